/** anchorpool's public API. Everything exported here is supported; deep imports are not. */
export { createSource } from './discovery/create-source.js';
export type { SourceOptions, EtcdOptions } from './discovery/source-options.js';
export type { EndpointSource, EndpointChange, EndpointSnapshot, ResyncInfo, ResyncReason, SourceEvents, SourceStatus, ReadyOptions, ChangeCause } from './discovery/source.js';
export { type EndpointEntry, type EndpointFormat, type ParseLimits, type ParseResult, parseEndpointValue, DEFAULT_LIMITS } from './discovery/endpoint-entry.js';
export { type ParsedAddress, parseAddress } from './discovery/address.js';
export { type Target, type EtcdTarget, type StaticTarget, parseTarget } from './discovery/target.js';
export type { EndpointDiff, InvalidEndpoint } from './discovery/desired-state.js';
export { type Logger, type LogFields, type LogLevel, consoleLogger, silentLogger } from './core/logger.js';
export {
  AnchorPoolError,
  ConfigError,
  InvalidTargetError,
  EtcdUnavailableError,
  EtcdAuthError,
  ClientIdTakenError,
  PoolClosedError,
  isAnchorPoolError,
} from './core/errors.js';
export { AnchorPool, createPool, type AcquireOptions, type AnchorInfo, type AnchorStateEvent, type AnchorHealthEvent, type LeaseLeakEvent, type PoolEvents, type PoolStats, type ReadyWaitOptions } from './pool/pool.js';
export type { PoolOptions } from './pool/pool-options.js';
export type { AnchorOptions, HealthCheckOptions, LivenessOptions, OutlierDetectionOptions, PickMode, SlowStartOptions, SubsetOptions, ZoneRoutingOptions } from './anchors/anchor-options.js';
export type { ZoneReport } from './anchors/anchor-set.js';
export type { SubsetReport } from './anchors/subset-filter.js';
export { Lease } from './pool/lease.js';
export type { AnchorState, AnchorHealth } from './anchors/anchor.js';
export type { CallOutcome } from './core/call-outcome.js';
export { isNeverSent } from './core/never-sent.js';
export {
  ReadyTimeoutError,
  AcquireTimeoutError,
  AcquireAbortedError,
  TooManyWaitersError,
  NoAnchorAvailableError,
  LeaseReleasedError,
  ForeignLeaseError,
} from './core/errors.js';
export { registerAnchorpool, type RegisterOptions } from './native/register-anchorpool.js';
export { registerPoolMetrics, serveMetrics, type MetricsSource } from './pool/metrics.js';
export { register, registrationValue, type Registration, type RegistrationOptions, type RegistrationEvents, type RegistrationFormat } from './discovery/registration.js';
