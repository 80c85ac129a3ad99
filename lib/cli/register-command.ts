/**
 * `anchorpool register`: puts a backend's entry under an etcd prefix on a lease that is
 * kept alive, replaces the lease whenever it is lost, and on SIGINT/SIGTERM deletes the
 * key. For backends without an etcd client of their own (run it beside them).
 * --key names the entry, so the TLS client key is --key-file here.
 * Exit code: 0 registered until stopped, 1 etcd unreachable or refusing, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { parseAddress } from '../address.js';
import { ConfigError } from '../errors.js';
import { consoleLogger } from '../logger.js';
import { hexLease, register, type Registration, type RegistrationOptions } from '../register.js';
import type { CommandIo } from './command-io.js';
import { etcdConnectionHelp, etcdFlags, etcdOptionsFromFlags } from './etcd-flags.js';
import { UsageError } from './usage-error.js';

export const REGISTER_HELP = `usage: anchorpool register --prefix P --key NAME --addr HOST:PORT [--anchors N] [--ttl S]
                           [--format json|go] [--timeout MS] [--etcd HOSTS]

Register a backend in etcd as P/NAME on a lease, keep it registered (a lost lease is
replaced) until SIGINT or SIGTERM, then delete the key.

  --prefix P             key prefix the clients watch, used exactly as typed (a trailing / is added)
  --key NAME             the entry's name under the prefix (the etcd key is P/NAME)
  --addr HOST:PORT       the backend's address: host:port, [v6]:port or unix:/path
  --anchors N            connections each client anchors to it, 1-64 (default 1)
  --ttl S                lease TTL in seconds, at least 2 (default 10): how long the
                         key outlives this process if it dies without cleaning up
  --format json|go       json: {"addr":…,"anchors":N} (default); go: etcd's Go
                         endpoints.Manager value, for Go resolvers on the same prefix
  --timeout MS           how long to try the first registration (default 10000)

etcd connection:
${etcdConnectionHelp('key-file')}

Exit status: 0 registered until stopped, 1 etcd unreachable or refused, 2 usage error.`;

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
  ttl: { type: 'string' },
  format: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function integerFlag(flag: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return value;
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
  const options: RegistrationOptions = {
    // --key is the entry's name here; the TLS client key comes from --key-file.
    etcd: etcdOptionsFromFlags({ ...values, key: undefined }, io.env, { keyFlag: 'key-file' }),
    prefix,
    key,
    addr,
    anchors: integerFlag('anchors', values.anchors, 1, 64, 1),
    ttlSeconds: integerFlag('ttl', values.ttl, 2, 2_147_483, 10),
    format,
    timeoutMillis: integerFlag('timeout', values.timeout, 1, 2_147_483_647, 10_000),
    logger: consoleLogger('info', io.err),
  };
  // Asked for now, so a SIGTERM during the first registration is caught and handled below.
  const interrupted = io.interrupted;

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
    io.out(`stopping: deleting ${registration.key}`);
  } finally {
    await registration.close();
  }
  return 0;
}
