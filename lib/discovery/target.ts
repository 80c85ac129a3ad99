/**
 * Target URIs, parsed the way gRPC parses them (scheme:[//authority/]path):
 *   etcd://[host1:2379,host2:2379]/<prefix>[#N]   watch the key prefix <prefix>
 *   pass:///host1:port1[#N1][@zone1],host2:port2[#N2][@zone2]   a fixed list of addresses
 * The etcd prefix is the URI path as gRPC sees it, so it has no leading slash unless
 * written with four slashes (etcd:////svc/ watches "/svc/"). Like etcd's Go resolver.
 */
import { InvalidTargetError } from '../core/errors.js';
import { parseAddressWithAnchors, type ParseLimits } from './endpoint-entry.js';
import { parseAddress } from './address.js';

export interface EtcdTarget {
  readonly scheme: 'etcd';
  readonly prefix: string;
  /** Hosts from the URI authority, when one was given. */
  readonly hosts?: readonly string[];
  /** `#N` on the target: the anchor count for values that do not give one. */
  readonly defaultAnchors?: number;
}

/** One pass:/// entry: `host:port[#N[-M]][@zone]`. */
export interface StaticEntry {
  readonly addr: string;
  readonly anchors: number;
  readonly maxAnchors?: number;
  readonly zone?: string;
}

export interface StaticTarget {
  readonly scheme: 'pass';
  readonly entries: readonly StaticEntry[];
}

export type Target = EtcdTarget | StaticTarget;

// Same shape as grpc-js's URI regex, so a target means here what it means to a channel.
const URI = /^(?:([A-Za-z0-9+.-]+):)?(?:\/\/([^/]*)\/)?(.+)$/;

/** Makes a prefix end in "/", so that svc/echo never also matches svc/echo_other/… */
export function normalizePrefix(prefix: string): string {
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

export function validateEtcdHost(host: string): string | null {
  const bare = host.replace(/^https?:\/\//, '');
  const parsed = parseAddress(bare);
  if (!parsed.ok || parsed.value.kind !== 'tcp') return parsed.ok ? 'unix sockets are not supported for etcd hosts' : parsed.reason;
  return null;
}

export function parseTarget(target: string, limits: ParseLimits): Target {
  const match = URI.exec(target);
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new InvalidTargetError(target, 'expected etcd://[hosts]/<prefix> or pass:///<host:port>[#N][@zone],…');
  }
  const [, scheme, authority, path] = match as unknown as [string, string, string, string];
  if (scheme === 'etcd') return parseEtcdTarget(target, authority, path, limits);
  if (scheme === 'pass') return parseStaticTarget(target, authority, path, limits);
  throw new InvalidTargetError(target, `unknown scheme ${JSON.stringify(scheme)} (expected "etcd" or "pass")`);
}

function parseEtcdTarget(target: string, authority: string, path: string, limits: ParseLimits): EtcdTarget {
  let prefix = path;
  let defaultAnchors: number | undefined;
  const hash = path.lastIndexOf('#');
  if (hash !== -1) {
    const text = path.slice(hash + 1);
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || n < 1 || n > limits.maxAnchorsPerKey) {
      throw new InvalidTargetError(target, `default anchor count "#${text}" must be an integer from 1 to ${limits.maxAnchorsPerKey}`);
    }
    defaultAnchors = n;
    prefix = path.slice(0, hash);
  }
  if (prefix.length === 0 || prefix === '/') {
    throw new InvalidTargetError(target, 'the key prefix is empty; watching the whole keyspace is not allowed');
  }
  const result: { scheme: 'etcd'; prefix: string; hosts?: string[]; defaultAnchors?: number } = {
    scheme: 'etcd',
    prefix: normalizePrefix(prefix),
  };
  if (authority.length > 0) {
    const hosts = authority.split(',');
    for (const host of hosts) {
      const problem = validateEtcdHost(host);
      if (problem !== null) throw new InvalidTargetError(target, `etcd host ${JSON.stringify(host)}: ${problem}`);
    }
    result.hosts = hosts;
  }
  if (defaultAnchors !== undefined) result.defaultAnchors = defaultAnchors;
  return result;
}

function parseStaticTarget(target: string, authority: string, path: string, limits: ParseLimits): StaticTarget {
  if (authority.length > 0) {
    throw new InvalidTargetError(target, `pass:/// takes no authority (got ${JSON.stringify(authority)}); write pass:///host:port,…`);
  }
  const entries = path.split(',').map((item, index) => {
    const parsed = parseAddressWithAnchors(item.trim(), limits);
    if (!parsed.ok) throw new InvalidTargetError(target, `entry ${index + 1} (${JSON.stringify(item)}): ${parsed.reason}`);
    const entry: StaticEntry = {
      addr: parsed.addr,
      anchors: parsed.anchors,
      ...(parsed.maxAnchors !== undefined && { maxAnchors: parsed.maxAnchors }),
      ...(parsed.zone !== undefined && { zone: parsed.zone }),
    };
    return entry;
  });
  return { scheme: 'pass', entries };
}
