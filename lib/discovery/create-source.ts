/**
 * Builds the EndpointSource a target names: etcd:///… or pass:///…. Validates options
 * first. The implementing classes are not exported: the EndpointSource interface is the
 * contract, and their protected machinery is no API.
 */
import { resolveSourceOptions, type SourceOptions } from './source-options.js';
import type { EndpointSource } from './source.js';
import { EtcdEndpointSource } from './source-etcd.js';
import { StaticEndpointSource } from './source-static.js';

export function createSource(options: SourceOptions): EndpointSource {
  const resolved = resolveSourceOptions(options);
  if (resolved.target.scheme === 'pass') {
    return new StaticEndpointSource(resolved.target, resolved.limits, resolved.logger);
  }
  // resolveSourceOptions always fills etcd options for an etcd target.
  return new EtcdEndpointSource(resolved.etcd!, resolved.limits, resolved.logger, resolved.coalesceMillis);
}
