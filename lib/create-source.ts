/** Builds the EndpointSource a target names: etcd:///… or pass:///…. Validates options first. */
import { resolveSourceOptions, type SourceOptions } from './config.js';
import { EtcdEndpointSource } from './source-etcd.js';
import { StaticEndpointSource } from './source-static.js';

export function createSource(options: SourceOptions): EtcdEndpointSource | StaticEndpointSource {
  const resolved = resolveSourceOptions(options);
  if (resolved.target.scheme === 'pass') {
    return new StaticEndpointSource(resolved.target, resolved.limits, resolved.logger);
  }
  // resolveSourceOptions always fills etcd options for an etcd target.
  return new EtcdEndpointSource(resolved.etcd!, resolved.limits, resolved.logger, resolved.coalesceMillis);
}
