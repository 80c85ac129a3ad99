/**
 * `anchorpool register`: puts a backend's entry under an etcd prefix on a lease that is
 * kept alive, replaces the lease whenever it is lost, and on SIGINT/SIGTERM deletes the
 * key, waits --drain seconds (clients stop sending new calls, calls in flight finish),
 * revokes the lease and exits. A second signal meanwhile exits at once.
 * For backends without an etcd client of their own (run it beside them).
 * --key names the entry, so the TLS client key is --key-file here.
 * Exit code: 0 registered until stopped, 1 etcd unreachable or refusing, 2 usage error,
 * 128 + signal number when a second signal cut the stop short (130 SIGINT, 143 SIGTERM).
 */
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { parseAddress } from '../discovery/address.js';
import { ConfigError } from '../core/errors.js';
import { consoleLogger } from '../core/logger.js';
import { hexLease, MAX_TTL_SECONDS, register, type Registration, type RegistrationOptions } from '../discovery/registration.js';
import { isZoneName, ZONE_RULE } from '../core/zone-name.js';
import { MAX_TIMER_MILLIS, MAX_TIMER_SECONDS } from '../core/timer-limit.js';
import type { CommandIo } from './command-io.js';
import { etcdConnectionHelp, etcdFlags, etcdOptionsFromFlags } from './etcd-flags.js';
import { UsageError } from './usage-error.js';

/** The --drain default, in seconds: see docs/decisions.md (2026-12-01, "Registration drain"). */
export const DEFAULT_DRAIN_SECONDS = 5;

export const REGISTER_HELP = `usage: anchorpool register --prefix P --key NAME --addr HOST:PORT [--anchors N] [--zone ZONE] [--ttl S]
                           [--format json|go] [--drain S] [--timeout MS] [--etcd HOSTS]

Register a backend in etcd as P/NAME on a lease, keep it registered (a lost lease is
replaced) until SIGINT or SIGTERM. Then delete the key at once, wait --drain seconds
while clients stop sending new calls and calls in flight finish, revoke the lease and
exit 0. A second SIGINT or SIGTERM during that wait exits at once (130 or 143). Stop
the backend itself only after this command has exited.

  --prefix P             key prefix the clients watch, used exactly as typed (a trailing / is added)
  --key NAME             the entry's name under the prefix (the etcd key is P/NAME)
  --addr HOST:PORT       the backend's address: host:port, [v6]:port or unix:/path
  --anchors N            connections each client anchors to it, 1-64 (default 1)
  --zone ZONE            the zone the backend runs in, for zone-aware clients (e.g.
                         eu-west-1a): 1 to 128 characters of A-Z a-z 0-9 . _ : / -;
                         written as "zone" (json) or Metadata.zone (go). Default: none
  --ttl S                lease TTL in seconds, at least 2 (default 10): how long the
                         key outlives this process if it dies without cleaning up
  --format json|go       json: {"addr":…,"anchors":N[,"zone":…]} (default); go: etcd's Go
                         endpoints.Manager value, for Go resolvers on the same prefix
  --drain S              seconds to wait after deleting the key before exiting, a
                         non-negative number (default ${DEFAULT_DRAIN_SECONDS}; 0 exits right after the delete)
  --timeout MS           how long to try the first registration (default 10000)

etcd connection:
${etcdConnectionHelp('key-file')}

Exit status: 0 registered until stopped (and drained), 1 etcd unreachable or refused,
2 usage error, 130/143 a second SIGINT/SIGTERM cut the drain short.`;

const registerFlags = {
  etcd: etcdFlags.etcd,
  prefix: etcdFlags.prefix,
  cacert: etcdFlags.cacert,
  cert: etcdFlags.cert,
  'key-file': { type: 'string' },
  user: etcdFlags.user,
  'password-file': etcdFlags['password-file'],
  'dial-timeout': etcdFlags['dial-timeout'],
  // multiple, to catch `--key tls.key … --key NAME`: elsewhere --key is the TLS key.
  key: { type: 'string', multiple: true },
  addr: { type: 'string' },
  anchors: { type: 'string' },
  zone: { type: 'string' },
  ttl: { type: 'string' },
  format: { type: 'string' },
  drain: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integerFlag(flag: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return value;
}

/** Seconds, a non-negative decimal number (`5`, `0.5`), as whole milliseconds. */
function secondsFlag(flag: string, text: string | undefined, fallback: number): number {
  const max = MAX_TIMER_SECONDS;
  const seconds = text === undefined ? fallback : /^([0-9]+(\.[0-9]*)?|\.[0-9]+)$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0 && seconds <= max)) throw new UsageError(`--${flag} must be a number of seconds from 0 to ${max}, got ${JSON.stringify(text)}`);
  return Math.round(seconds * 1000);
}

/**
 * From now until the returned function is called, a SIGINT or SIGTERM exits the process at
 * once with 128 + its number: the operator's way to cut a drain (or a hung etcd) short.
 */
function exitOnNextSignal(io: CommandIo): () => void {
  const exit = (signal: NodeJS.Signals): void => {
    io.err(`anchorpool register: ${signal} again: exiting now, without waiting for the drain`);
    process.exit(128 + constants.signals[signal as 'SIGINT' | 'SIGTERM']);
  };
  process.on('SIGINT', exit);
  process.on('SIGTERM', exit);
  return () => {
    process.off('SIGINT', exit);
    process.off('SIGTERM', exit);
  };
}

function required(flag: string, text: string | undefined, what: string): string {
  if (text === undefined || text.length === 0) throw new UsageError(`--${flag} ${what} is required`);
  return text;
}

function hex(leaseId: string | undefined): string {
  return hexLease(leaseId) ?? '(none)';
}

export async function registerCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: registerFlags, strict: true, allowPositionals: false });
  if (values.help) {
    io.out(REGISTER_HELP);
    return 0;
  }
  const prefix = required('prefix', values.prefix, 'P');
  const keys = values.key ?? [];
  if (keys.length > 1) throw new UsageError('--key given more than once: here --key is the entry name; the TLS client key is --key-file FILE');
  const key = required('key', keys[0], 'NAME');
  const addr = required('addr', values.addr, 'HOST:PORT');
  const parsedAddr = parseAddress(addr);
  if (!parsedAddr.ok) throw new UsageError(`--addr: ${parsedAddr.reason}`);
  const format = values.format ?? 'json';
  if (format !== 'json' && format !== 'go') throw new UsageError(`--format must be json or go, got ${JSON.stringify(format)}`);
  const drainMillis = secondsFlag('drain', values.drain, DEFAULT_DRAIN_SECONDS);
  const zone = values.zone;
  if (zone !== undefined && !isZoneName(zone)) throw new UsageError(`--zone ${ZONE_RULE}, got ${JSON.stringify(zone)}`);
  const options: RegistrationOptions = {
    // --key is the entry's name here; the TLS client key comes from --key-file.
    etcd: etcdOptionsFromFlags({ ...values, key: undefined }, io.env, { keyFlag: 'key-file' }),
    prefix,
    key,
    addr,
    anchors: integerFlag('anchors', values.anchors, 1, 64, 1),
    ...(zone !== undefined && { zone }),
    ttlSeconds: integerFlag('ttl', values.ttl, 2, MAX_TTL_SECONDS, 10),
    format,
    timeoutMillis: integerFlag('timeout', values.timeout, 1, MAX_TIMER_MILLIS, 10_000),
    drainMillis,
    logger: consoleLogger('info', io.err),
  };
  const drainSeconds = drainMillis / 1000;
  // Asked for now, so a SIGTERM during the first registration is caught and handled below.
  const interrupted = io.interrupted;
  // Once the first signal came, the next one exits at once (until this command returns).
  let finished = false;
  let stopListening: (() => void) | undefined;
  void interrupted.then(() => {
    if (!finished) stopListening = exitOnNextSignal(io);
  });
  try {
    let registration: Registration;
    try {
      registration = await register(options);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      io.err(`anchorpool register: ${(err as Error).message}`);
      return 1;
    }
    const { ttlSeconds } = registration;
    io.out(`registered ${registration.key} = ${registration.value}`);
    io.out(`lease ${hex(registration.leaseId())} (hex, as etcdctl shows it), TTL ${ttlSeconds} s; SIGINT or SIGTERM deletes the key`);
    registration.on('registered', ({ leaseId }) => io.out(`registered again on lease ${hex(leaseId)}`));
    try {
      await interrupted;
      io.out(
        drainSeconds > 0
          ? `stopping: deleting ${registration.key}, then draining for ${drainSeconds} s (a second SIGINT or SIGTERM exits at once)`
          : `stopping: deleting ${registration.key}`,
      );
    } finally {
      await registration.close();
    }
    if (drainSeconds > 0) io.out(`drained for ${drainSeconds} s; exiting`);
    return 0;
  } finally {
    finished = true;
    stopListening?.();
  }
}
