/** anchorpool's public API. Everything exported here is supported; deep imports are not. */
export { createSource } from './create-source.js';
export type { SourceOptions, EtcdOptions } from './config.js';
export type { EndpointSource, EndpointChange, EndpointSnapshot, ResyncInfo, ResyncReason, SourceEvents, SourceStatus, ReadyOptions, ChangeCause } from './source.js';
export { type EndpointEntry, type EndpointFormat, type ParseLimits, type ParseResult, parseEndpointValue, DEFAULT_LIMITS } from './endpoint.js';
export { type ParsedAddress, parseAddress } from './address.js';
export { type Target, type EtcdTarget, type StaticTarget, parseTarget } from './target.js';
export type { EndpointDiff, InvalidEndpoint } from './desired-state.js';
export { type Logger, type LogFields, type LogLevel, consoleLogger, silentLogger } from './logger.js';
export {
  AnchorPoolError,
  ConfigError,
  InvalidTargetError,
  EtcdUnavailableError,
  EtcdAuthError,
  PoolClosedError,
  isAnchorPoolError,
} from './errors.js';
export { AnchorPool, createPool, type AcquireOptions, type AnchorInfo, type AnchorStateEvent, type AnchorHealthEvent, type LeaseLeakEvent, type PoolEvents, type PoolStats, type ReadyWaitOptions } from './pool.js';
export type { PoolOptions } from './pool-config.js';
export type { AnchorOptions, HealthCheckOptions, OutlierDetectionOptions, PickMode } from './anchor-options.js';
export { Lease } from './lease.js';
export type { AnchorState, AnchorHealth } from './anchor.js';
export type { CallOutcome } from './call-outcome.js';
export { isNeverSent } from './never-sent.js';
export {
  ReadyTimeoutError,
  AcquireTimeoutError,
  AcquireAbortedError,
  TooManyWaitersError,
  NoAnchorAvailableError,
  LeaseReleasedError,
  ForeignLeaseError,
} from './errors.js';
export { registerAnchorpool, type RegisterOptions } from './grpc/register.js';
export { registerPoolMetrics, serveMetrics, type MetricsSource } from './metrics.js';
export { register, registrationValue, type Registration, type RegistrationOptions, type RegistrationEvents, type RegistrationFormat } from './register.js';
