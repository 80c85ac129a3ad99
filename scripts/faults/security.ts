// Security (issue 7, item 9): etcd over TLS with client-certificate auth and user auth on,
// a role that may only read the prefix, and echo backends that speak TLS only.
//   - A pool logged in as the read-only user lists and watches the prefix (a key that root
//     adds with etcdctl arrives), and makes real Echo calls over TLS leases. The user
//     cannot write, which shows the pool never needs to.
//   - Wrong credentials fail ready() with a typed error whose message says what was wrong:
//     wrong password, no user, a prefix the role may not read, the wrong CA, no client
//     certificate, no TLS at all.
//   - Pools with plaintext (or wrong-CA) backend credentials get no call through; the
//     backends' own counters prove it.
//   - No password and no private key material appears in any log line (a logger that
//     captures every level), error message, stack or cause, pool.snapshot() / stats() /
//     anchors() / metrics, or the output of `anchorpool status` run with the TLS flags and
//     a password file.
// The short profile is the same scenario with fewer calls.
import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureEtcdInstalled, etcdctl, startCluster, type EtcdCluster } from '../../etcd-dev/etcd-dev.mjs';
import { type AnchorPool, createPool, EtcdAuthError, EtcdUnavailableError, type LogFields, type Logger, type PoolOptions, ReadyTimeoutError } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { keyMaterialLines, makeCertificates, type CertFiles } from '../../testkit/certs.js';
import { check, sleep, type FaultCheck, type FaultScenario } from './fault.js';

const PREFIX = 'services/sec/';
const FORBIDDEN_PREFIX = 'services/other/';
/** ready() timeout of the pools that are meant to fail; an auth refusal must come well before it. */
const FAIL_TIMEOUT_MILLIS = 4000;
const CONCURRENCY = 16;
const BIN = fileURLToPath(new URL('../../../bin/anchorpool.js', import.meta.url));

/** Every string reachable from `value` (keys too; Buffers decoded; errors with stack and cause). */
function strings(value: unknown, out: string[] = [], seen = new Set<unknown>(), depth = 0): string[] {
  if (value === null || value === undefined) return out;
  if (typeof value === 'string') {
    out.push(value);
    return out;
  }
  if (typeof value !== 'object') {
    out.push(String(value));
    return out;
  }
  if (seen.has(value) || depth > 10) return out;
  seen.add(value);
  if (value instanceof Uint8Array) {
    out.push(Buffer.from(value).toString('utf8'));
    return out;
  }
  if (value instanceof Date) {
    out.push(value.toISOString());
    return out;
  }
  if (value instanceof Error) {
    // message and stack are not enumerable; a cause may hold a library's own error.
    out.push(value.name, value.message, value.stack ?? '');
    strings(value.cause, out, seen, depth + 1);
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      strings(k, out, seen, depth + 1);
      strings(v, out, seen, depth + 1);
    }
    return out;
  }
  if (value instanceof Set || Array.isArray(value)) {
    for (const v of value) strings(v, out, seen, depth + 1);
    return out;
  }
  for (const [k, v] of Object.entries(value)) {
    out.push(k);
    strings(v, out, seen, depth + 1);
  }
  return out;
}

const text = (value: unknown): string => strings(value).join('\n');

/** A logger that keeps every line at every level, fields included. */
function capturingLogger(lines: string[]): Logger {
  const at = (level: string) => (fields: LogFields, message: string) => {
    lines.push(`${level} ${message} ${text(fields)}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/anchorpool.js …`, with no etcd settings inherited from this process's environment. */
function runCli(args: string[]): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_') && !k.startsWith('ANCHORPOOL_')) env[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

interface CallCount {
  ok: number;
  failed: number;
  byServer: Map<string, number>;
  errors: unknown[];
}

/** `total` Echo calls, each on its own lease, CONCURRENCY at a time. */
async function callsOverLeases(pool: AnchorPool, total: number, acquireTimeoutMillis?: number): Promise<CallCount> {
  const count: CallCount = { ok: 0, failed: 0, byServer: new Map(), errors: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next += 1;
      try {
        const options = acquireTimeoutMillis === undefined ? undefined : { timeoutMillis: acquireTimeoutMillis };
        const reply = await pool.use((lease) => callEcho(lease.client(EchoClient), 5000), options);
        count.ok += 1;
        count.byServer.set(reply.server, (count.byServer.get(reply.server) ?? 0) + 1);
      } catch (err) {
        count.failed += 1;
        if (count.errors.length < 5) count.errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, total) }, worker));
  return count;
}

async function waitUntil(predicate: () => boolean, timeoutMillis: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMillis;
  while (!predicate()) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  return true;
}

const describe = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));
/** Long messages keep their start (who) and their end (why). */
const ends = (s: string): string => {
  const flat = s.replace(/\s*\n\s*/g, ' ');
  return flat.length > 300 ? `${flat.slice(0, 90)} … ${flat.slice(-200)}` : flat;
};
const lastLine = (s: string): string => s.trim().split('\n').at(-1) ?? '';
const short = (s: string, n = 160): string => (s.length > n ? `${s.slice(0, n)}…` : s);

export const securityScenario: FaultScenario = {
  id: 'security',
  title: 'Security: etcd over TLS with auth and a read-only user, TLS backends, no secret in any output',
  async run(context) {
    const calls = context.short ? 100 : 400;
    const cliTimeoutMillis = 5000;
    await ensureEtcdInstalled({ log: context.log });

    const dir = await mkdtemp(join(tmpdir(), 'anchorpool-security-'));
    const pools: AnchorPool[] = [];
    const backends: Backend[] = [];
    let cluster: EtcdCluster | undefined;
    try {
      const certs: CertFiles = await makeCertificates(dir);
      const [caPem, otherCaPem, clientCertPem, clientKeyPem] = await Promise.all(
        [certs.caFile, certs.otherCaFile, certs.clientCertFile, certs.clientKeyFile].map((f) => readFile(f)),
      ) as [Buffer, Buffer, Buffer, Buffer];
      // Random, so that nothing can contain them by chance and a leak is unmistakable.
      const secret = (label: string) => `${label}-${randomBytes(12).toString('base64url')}`;
      const rootPassword = secret('rootpw');
      const readerPassword = secret('readerpw');
      const wrongPassword = secret('wrongpw');

      context.log('security: starting etcd with TLS and client-certificate auth');
      cluster = await startCluster({
        tls: {
          certFile: certs.serverCertFile,
          keyFile: certs.serverKeyFile,
          caFile: certs.caFile,
          clientCertAuth: true,
          clientCertFile: certs.clientCertFile,
          clientKeyFile: certs.clientKeyFile,
        },
      });
      const endpoints = cluster.endpoints;
      const hosts = cluster.hosts;
      // TLS files and users go through etcdctl's environment: passwords never sit in argv,
      // so a failing etcdctl's error message (which shows argv) cannot carry one.
      const tlsEnv = { ETCDCTL_CACERT: certs.caFile, ETCDCTL_CERT: certs.clientCertFile, ETCDCTL_KEY: certs.clientKeyFile };
      const asRoot = { ...tlsEnv, ETCDCTL_USER: `root:${rootPassword}` };
      const asReader = { ...tlsEnv, ETCDCTL_USER: `reader:${readerPassword}` };
      const ctl = (args: string[], env: Record<string, string>, input?: string) =>
        etcdctl(args, { endpoints, env, ...(input === undefined ? {} : { input }) });
      await ctl(['user', 'add', 'root', '--interactive=false'], tlsEnv, `${rootPassword}\n`);
      await ctl(['role', 'add', 'reader'], tlsEnv);
      await ctl(['role', 'grant-permission', 'reader', 'read', '--prefix=true', PREFIX], tlsEnv);
      await ctl(['user', 'add', 'reader', '--interactive=false'], tlsEnv, `${readerPassword}\n`);
      await ctl(['user', 'grant-role', 'reader', 'reader'], tlsEnv);
      await ctl(['auth', 'enable'], tlsEnv);

      const tlsBackend = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile };
      const a = new Backend({ name: 'sec-a', tls: tlsBackend });
      const b = new Backend({ name: 'sec-b', tls: tlsBackend });
      backends.push(a, b);
      await Promise.all([a.start(), b.start()]);
      await ctl(['put', `${PREFIX}a`, JSON.stringify({ addr: a.address, anchors: 2 })], asRoot);
      await ctl(['put', `${FORBIDDEN_PREFIX}x`, `${a.address}#1`], asRoot);
      const readerWrite = await etcdctl(['put', `${PREFIX}written-by-reader`, `${a.address}#1`], { endpoints, env: asReader, allowFail: true });

      const logLines: string[] = [];
      const logger = capturingLogger(logLines);
      const caught: unknown[] = [];
      const etcdTls = { rootCertificate: caPem, privateKey: clientKeyPem, certChain: clientCertPem };
      const readerAuth = { username: 'reader', password: readerPassword };
      const open = (options: PoolOptions): AnchorPool => {
        const pool = createPool({ logger, ...options });
        pool.on('error', (err) => caught.push(err));
        pool.on('etcd-disconnected', (info) => caught.push(info.error));
        pools.push(pool);
        return pool;
      };
      const stateDumps: string[] = [];
      const dumpState = async (pool: AnchorPool): Promise<void> => {
        stateDumps.push(text([pool.snapshot(), pool.stats(), pool.anchors()]), await pool.metrics().metrics());
      };

      // ── the right credentials: the read-only user over TLS, TLS to the backends ──
      context.log('security: pool as the read-only user, TLS to etcd and backends');
      const good = open({
        target: `etcd:///${PREFIX}`,
        etcd: { hosts, credentials: etcdTls, auth: readerAuth },
        credentials: grpc.credentials.createSsl(caPem),
        readyTimeoutMillis: 15_000,
      });
      let goodReadyError: unknown;
      await good.ready().catch((err: unknown) => {
        goodReadyError = err;
        caught.push(err);
      });
      const before = await callsOverLeases(good, goodReadyError === undefined ? calls : 0);
      caught.push(...before.errors);

      // root adds a key; the reader's watch must deliver it.
      let addedAt: number | undefined;
      good.on('endpoint-added', (endpoint) => {
        if (endpoint.key === `${PREFIX}b`) addedAt ??= performance.now();
      });
      const putAt = performance.now();
      await ctl(['put', `${PREFIX}b`, JSON.stringify({ addr: b.address, anchors: 2 })], asRoot);
      const arrived = await waitUntil(() => addedAt !== undefined, 10_000);
      const bReady = await waitUntil(() => good.anchors().some((x) => x.key === `${PREFIX}b` && x.state === 'READY'), 10_000);
      const after = await callsOverLeases(good, goodReadyError === undefined ? calls : 0);
      caught.push(...after.errors);
      await dumpState(good);
      const source = good.stats().source;

      // ── wrong credentials, and plaintext / wrong-CA backends, all at once ──
      context.log('security: wrong etcd credentials, wrong backend credentials, and the CLI, at once');
      // From here on the backends count only calls from the pools that must get none through.
      await Promise.all(backends.map((x) => x.resetStats()));
      const failing = { readyTimeoutMillis: FAIL_TIMEOUT_MILLIS };
      const fastEtcd = { hosts, dialTimeoutMillis: 2000 };
      const etcdCases: { name: string; expect: typeof EtcdAuthError | typeof EtcdUnavailableError; says: RegExp; options: PoolOptions }[] = [
        { name: 'wrong password', expect: EtcdAuthError, says: /authentication failed/, options: { target: `etcd:///${PREFIX}`, etcd: { ...fastEtcd, credentials: etcdTls, auth: { username: 'reader', password: wrongPassword } } } },
        { name: 'no user', expect: EtcdAuthError, says: /permission denied|user name/, options: { target: `etcd:///${PREFIX}`, etcd: { ...fastEtcd, credentials: etcdTls } } },
        { name: 'prefix the role may not read', expect: EtcdAuthError, says: /permission denied/, options: { target: `etcd:///${FORBIDDEN_PREFIX}`, etcd: { ...fastEtcd, credentials: etcdTls, auth: readerAuth } } },
        { name: 'wrong CA', expect: EtcdUnavailableError, says: /certificate/, options: { target: `etcd:///${PREFIX}`, etcd: { ...fastEtcd, credentials: { ...etcdTls, rootCertificate: otherCaPem }, auth: readerAuth } } },
        { name: 'no client certificate', expect: EtcdUnavailableError, says: /certificate/, options: { target: `etcd:///${PREFIX}`, etcd: { ...fastEtcd, credentials: { rootCertificate: caPem }, auth: readerAuth } } },
        { name: 'no TLS', expect: EtcdUnavailableError, says: /TLS/, options: { target: `etcd:///${PREFIX}`, etcd: { ...fastEtcd, auth: readerAuth } } },
      ];
      const etcdOutcomes = etcdCases.map(async (c) => {
        const pool = open({ ...c.options, ...failing });
        const t0 = performance.now();
        let error: unknown;
        await pool.ready().catch((err: unknown) => (error = err));
        const millis = performance.now() - t0;
        caught.push(error);
        await dumpState(pool);
        await pool.close();
        return { ...c, error, millis };
      });
      const backendCases = [
        { name: 'plaintext', credentials: grpc.credentials.createInsecure() },
        { name: 'wrong CA', credentials: grpc.credentials.createSsl(otherCaPem) },
      ];
      const probeCalls = 20;
      const backendOutcomes = backendCases.map(async (c) => {
        const pool = open({ target: `etcd:///${PREFIX}`, etcd: { hosts, credentials: etcdTls, auth: readerAuth }, credentials: c.credentials, ...failing });
        let error: unknown;
        await pool.ready().catch((err: unknown) => (error = err));
        caught.push(error);
        const count = await callsOverLeases(pool, probeCalls, 200);
        caught.push(...count.errors);
        await dumpState(pool);
        await pool.close();
        return { ...c, error, count };
      });
      // ── the CLI with TLS flags and a password file, meanwhile ──
      const passwordFile = join(dir, 'reader.pw');
      const wrongPasswordFile = join(dir, 'wrong.pw');
      await writeFile(passwordFile, `${readerPassword}\n`, { mode: 0o600 });
      await writeFile(wrongPasswordFile, `${wrongPassword}\n`, { mode: 0o600 });
      const cliBase = ['status', '--json', '--verbose', '--etcd', hosts.join(','), '--prefix', PREFIX];
      const cliTls = ['--cacert', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile];
      const cliRuns = Promise.all([
        runCli([...cliBase, ...cliTls, '--user', 'reader', '--password-file', passwordFile, '--timeout', String(cliTimeoutMillis)]),
        runCli([...cliBase, ...cliTls, '--user', 'reader', '--password-file', wrongPasswordFile, '--timeout', String(cliTimeoutMillis)]),
        // Plaintext against the TLS etcd: must fail with a message that points at TLS.
        runCli([...cliBase, '--user', 'reader', '--password-file', passwordFile, '--timeout', String(FAIL_TIMEOUT_MILLIS)]),
      ]);
      // One await for all, so that a rejection in one group cannot leave another unhandled.
      const [etcdResults, backendResults, [cliGood, cliWrong, cliPlain]] = await Promise.all([Promise.all(etcdOutcomes), Promise.all(backendOutcomes), cliRuns]);
      const servedMeanwhile = (await Promise.all(backends.map((x) => x.stats()))).reduce((sum, s) => sum + s.calls, 0);

      let cliKeys: string[] = [];
      try {
        cliKeys = (JSON.parse(cliGood.stdout) as { endpoints: { key: string }[] }).endpoints.map((e) => e.key).sort();
      } catch {
        // reported by the check below
      }

      // ── the secret scan ──
      const needles: [string, string][] = [
        ['root password', rootPassword],
        ['reader password', readerPassword],
        ['wrong password', wrongPassword],
        ['PEM private key header', 'PRIVATE KEY-----'],
        ...(await keyMaterialLines(certs.keyFiles)).map((line): [string, string] => ['private key material', line]),
      ];
      const cliOutputs = { 'status (right password)': cliGood, 'status (wrong password)': cliWrong, 'status (no TLS)': cliPlain };
      const haystacks: [string, string][] = [
        ['logs', logLines.join('\n')],
        ['errors', text(caught)],
        ['snapshot/stats/anchors/metrics', stateDumps.join('\n')],
        ...Object.entries(cliOutputs).map(([name, r]): [string, string] => [`CLI ${name}`, `${r.stdout}\n${r.stderr}`]),
      ];
      const leaks = [...new Set(haystacks.flatMap(([where, hay]) => needles.filter(([, needle]) => hay.includes(needle)).map(([what]) => `${what} in ${where}`)))];
      const errorCount = caught.filter((e) => e instanceof Error).length;
      const scannedEnough = logLines.length > 0 && errorCount >= etcdCases.length + backendCases.length && stateDumps.length > 0;

      // ── verdicts ──
      const checks: FaultCheck[] = [];
      checks.push(
        check(
          'the read-only user over TLS lists the prefix and makes real calls over TLS leases',
          goodReadyError === undefined && before.ok === calls && before.failed === 0,
          goodReadyError !== undefined ? `ready() failed: ${describe(goodReadyError)}` : `${before.ok}/${calls} Echo calls OK (${before.failed} failed${before.errors[0] ? `: ${short(describe(before.errors[0]))}` : ''})`,
        ),
      );
      checks.push(
        check(
          'a key root adds with etcdctl arrives through the read-only user\'s watch and takes calls',
          arrived && bReady && after.ok === calls && (after.byServer.get('sec-b') ?? 0) > 0 && (after.byServer.get('sec-a') ?? 0) > 0,
          `${arrived ? `arrived in ${(addedAt! - putAt).toFixed(0)} ms` : 'did not arrive in 10 s'}, anchor ${bReady ? 'READY' : 'not READY'}; then ${after.ok}/${calls} calls OK: ${[...after.byServer].map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}; source resyncs ${source.resyncs}`,
        ),
      );
      checks.push(
        check(
          'the pool needs no write access: the same user cannot put',
          readerWrite.code !== 0 && /permission denied/.test(readerWrite.stderr),
          readerWrite.code === 0 ? 'etcdctl put as reader SUCCEEDED' : `etcdctl put as reader refused: ${short(lastLine(readerWrite.stderr))}`,
        ),
      );
      for (const r of etcdResults) {
        const typed = r.error instanceof r.expect;
        const auth = r.expect === EtcdAuthError;
        const message = r.error instanceof Error ? r.error.message : String(r.error);
        const says = r.says.test(message);
        // An auth refusal needs a config change: ready() fails at once instead of retrying to its timeout.
        const prompt = !auth || r.millis < FAIL_TIMEOUT_MILLIS / 2;
        checks.push(
          check(
            `etcd, ${r.name}: ready() fails with ${r.expect.name} saying what was wrong`,
            typed && says && prompt,
            `${(r.error as { code?: string } | undefined)?.code ?? 'no error'} after ${r.millis.toFixed(0)} ms: ${ends(message)}`,
          ),
        );
      }
      for (const r of backendResults) {
        checks.push(
          check(
            `backends over TLS, ${r.name} pool credentials: no call gets through`,
            r.error instanceof ReadyTimeoutError && r.count.ok === 0 && r.count.failed === probeCalls,
            `ready(): ${short(describe(r.error), 120)}; ${r.count.ok}/${probeCalls} calls OK`,
          ),
        );
      }
      checks.push(
        check(
          'the TLS backends served no call from the plaintext / wrong-CA pools',
          servedMeanwhile === 0,
          `${servedMeanwhile} calls counted by the backends while those pools ran`,
        ),
      );
      checks.push(
        check(
          'anchorpool status with --cacert/--cert/--key, --user and --password-file works; a wrong password or no TLS is a clear error',
          cliGood.code === 0 &&
            cliKeys.join(',') === `${PREFIX}a,${PREFIX}b` &&
            cliWrong.code === 1 &&
            /refused access/.test(cliWrong.stderr) &&
            cliPlain.code === 1 &&
            /TLS/.test(cliPlain.stderr),
          `right password: exit ${cliGood.code}, keys ${cliKeys.join(',') || short(cliGood.stderr.trim())}; ` +
            `wrong password: exit ${cliWrong.code}, ${short(lastLine(cliWrong.stderr))}; no TLS: exit ${cliPlain.code}, …${lastLine(cliPlain.stderr).slice(-110)}`,
        ),
      );
      checks.push(
        check(
          'no password or private key material in logs, errors (with stacks and causes), snapshot/stats/metrics or CLI output',
          leaks.length === 0 && scannedEnough,
          `${leaks.length === 0 ? 'none found' : `FOUND: ${leaks.join('; ')}`}; scanned ${logLines.length} log lines, ${errorCount} errors, ${stateDumps.length} state dumps, ${Object.keys(cliOutputs).length} CLI runs for ${needles.length} secrets`,
        ),
      );

      const refused = checks.filter((c) => c.label.startsWith('etcd, ') && c.pass).length;
      return {
        id: 'security',
        title: this.title,
        figure:
          `read-only user over TLS+auth: ${before.ok + after.ok}/${2 * calls} TLS calls over leases, root's new key arrived ${arrived ? `in ${(addedAt! - putAt).toFixed(0)} ms` : 'NEVER'}; ` +
          `${refused}/${etcdCases.length} wrong etcd credentials refused with a clear typed error; ${servedMeanwhile} calls through plaintext/wrong-CA pools; ${leaks.length} secrets leaked`,
        checks,
        settings: {
          calls,
          concurrency: CONCURRENCY,
          failingReadyTimeoutMillis: FAIL_TIMEOUT_MILLIS,
          probeCalls,
          etcd: 'single node, client TLS with --client-cert-auth, auth enabled',
          keys: 'EC P-256, openssl',
        },
      };
    } finally {
      await Promise.allSettled(pools.map((p) => p.close()));
      await Promise.allSettled(backends.map((x) => x.kill()));
      await cluster?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
