/**
 * The one module that touches grpc-js's experimental resolver and load-balancer API.
 * That API changed in grpc-js 1.10 and again in 1.14 (the listener signature, StatusOr
 * service configs); @grpc/grpc-js is pinned exactly, and an upgrade edits this file.
 */
import { experimental, logVerbosity } from '@grpc/grpc-js';
import type { ServiceConfig } from '@grpc/grpc-js/build/src/service-config.js';

export const {
  registerResolver,
  registerLoadBalancerType,
  isLoadBalancerNameRegistered,
  QueuePicker,
  UnavailablePicker,
  PickResultType,
  statusOrFromValue,
  statusOrFromError,
  SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX,
  ChildLoadBalancerHandler,
  createChildChannelControlHelper,
  parseLoadBalancingConfig,
  BaseSubchannelWrapper,
} = experimental;

/** `GRPC_TRACE=<tracer> GRPC_VERBOSITY=DEBUG` prints these lines, as grpc-js's own tracers. */
export function trace(tracer: string, text: string): void {
  experimental.trace(logVerbosity.DEBUG, tracer, text);
}

export type Resolver = experimental.Resolver;
export type ResolverListener = experimental.ResolverListener;
export type GrpcUri = experimental.GrpcUri;
export type Endpoint = experimental.Endpoint;
export type SubchannelAddress = experimental.SubchannelAddress;
export type LoadBalancer = experimental.LoadBalancer;
export type ChannelControlHelper = experimental.ChannelControlHelper;
export type TypedLoadBalancingConfig = experimental.TypedLoadBalancingConfig;
export type SubchannelInterface = experimental.SubchannelInterface;
export type Picker = experimental.Picker;
export type PickArgs = experimental.PickArgs;
export type PickResult = experimental.PickResult;
export type StatusOr<T> = experimental.StatusOr<T>;
export type CallStream = experimental.CallStream;
export type { ServiceConfig };
