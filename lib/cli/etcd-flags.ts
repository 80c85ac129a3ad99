/**
 * The etcd connection flags every command shares, turned into etcd (or source) options.
 * Passwords never come from argv: --password-file, or ANCHORPOOL_ETCD_PASSWORD.
 * ETCDCTL_ENDPOINTS is the default for --etcd, as etcdctl users expect.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import type { EtcdOptions, SourceOptions } from '../discovery/source-options.js';
import { UsageError } from './usage-error.js';

export const etcdFlags = {
  etcd: { type: 'string' },
  prefix: { type: 'string' },
  target: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  user: { type: 'string' },
  'password-file': { type: 'string' },
  'dial-timeout': { type: 'string' },
  'auto-sync-interval': { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/**
 * The connection lines of the help, for a command whose TLS client key flag is
 * `keyFlag` (`register` uses --key for the entry's name, so its TLS key is --key-file).
 */
export function etcdConnectionHelp(keyFlag: 'key' | 'key-file' = 'key'): string {
  return `  --etcd HOSTS           comma-separated etcd hosts (default: $ETCDCTL_ENDPOINTS or 127.0.0.1:2379)
  --cacert FILE          CA certificate for etcd TLS (--cert/--${keyFlag} for client certificates)
  --user NAME            etcd user; the password is read from --password-file FILE
                         or the ANCHORPOOL_ETCD_PASSWORD environment variable
  --dial-timeout MS      deadline of each etcd call (default 5000)`;
}

export const ETCD_FLAGS_HELP = `etcd connection:
  --target URI           etcd://[hosts]/<prefix> or pass:///host:port[#N],… (instead of --prefix)
  --prefix P             key prefix to watch, used exactly as typed (a trailing / is added)
${etcdConnectionHelp()}
  --auto-sync-interval MS  re-read the member list this often, follow replaced members
                         (default 60000; 0: off)`;

type EtcdFlagValues = { [K in keyof typeof etcdFlags]?: string };

/** The connection flags' values; the TLS client key under `key` or `key-file`. */
export type EtcdConnectionFlagValues = Omit<EtcdFlagValues, 'prefix' | 'target' | 'auto-sync-interval'> & { 'key-file'?: string; 'auto-sync-interval'?: string };

export interface EtcdConnectionFlagOptions {
  /** Fall back to $ETCDCTL_ENDPOINTS without --etcd (default true). */
  hostsFromEnv?: boolean;
  /** The flag that holds the TLS client key (default 'key'). */
  keyFlag?: 'key' | 'key-file';
}

function readFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The etcd connection (hosts, TLS, auth, dial timeout) from the flags; no prefix. */
export function etcdOptionsFromFlags(values: EtcdConnectionFlagValues, env: NodeJS.ProcessEnv, options: EtcdConnectionFlagOptions = {}): EtcdOptions {
  const { hostsFromEnv = true, keyFlag = 'key' } = options;
  const etcd: EtcdOptions = {};
  const hostList = values.etcd ?? (hostsFromEnv ? env['ETCDCTL_ENDPOINTS'] : undefined);
  if (hostList !== undefined) etcd.hosts = hostList.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
  const tlsKey = values[keyFlag];
  if (values.cacert !== undefined) {
    const credentials: NonNullable<typeof etcd.credentials> = { rootCertificate: readFile('cacert', values.cacert) };
    if (values.cert !== undefined) credentials.certChain = readFile('cert', values.cert);
    if (tlsKey !== undefined) credentials.privateKey = readFile(keyFlag, tlsKey);
    etcd.credentials = credentials;
  } else if (values.cert !== undefined || tlsKey !== undefined) {
    throw new UsageError(`--cert and --${keyFlag} need --cacert`);
  }
  if (values.user !== undefined) {
    const password =
      values['password-file'] !== undefined
        ? readFile('password-file', values['password-file']).toString('utf8').replace(/\r?\n$/, '')
        : env['ANCHORPOOL_ETCD_PASSWORD'];
    if (password === undefined) throw new UsageError('--user needs --password-file FILE or ANCHORPOOL_ETCD_PASSWORD');
    etcd.auth = { username: values.user, password };
  }
  if (values['dial-timeout'] !== undefined) {
    const ms = Number(values['dial-timeout']);
    if (!Number.isInteger(ms) || ms < 1) throw new UsageError(`--dial-timeout must be a positive integer (ms), got ${values['dial-timeout']}`);
    etcd.dialTimeoutMillis = ms;
  }
  if (values['auto-sync-interval'] !== undefined) {
    const ms = Number(values['auto-sync-interval']);
    if (!Number.isInteger(ms) || ms < 0) throw new UsageError(`--auto-sync-interval must be a whole number of milliseconds (0: off), got ${values['auto-sync-interval']}`);
    etcd.autoSyncIntervalMillis = ms;
  }
  return etcd;
}

export function sourceOptionsFromFlags(values: EtcdFlagValues, env: NodeJS.ProcessEnv): SourceOptions {
  if (values.target !== undefined && values.prefix !== undefined) throw new UsageError('give --target or --prefix, not both');
  if (values.target === undefined && values.prefix === undefined) throw new UsageError('--prefix (or --target) is required');
  // A target names its own hosts (or none, for pass:///): $ETCDCTL_ENDPOINTS is not consulted then.
  const etcd = etcdOptionsFromFlags(values, env, { hostsFromEnv: values.target === undefined });
  if (values.prefix !== undefined) etcd.prefix = values.prefix;
  const options: SourceOptions = {};
  if (values.target !== undefined) options.target = values.target;
  const isStatic = values.target?.startsWith('pass:') ?? false;
  if (!isStatic) options.etcd = etcd;
  return options;
}
