// The drain period of a registration, against a real etcd: close() deletes the key at
// once, waits drainMillis with the lease still held, then revokes it; `anchorpool register
// --drain S` does the same on SIGTERM/SIGINT and exits 0, and a second signal exits at once.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { silentLogger } from '../lib/core/logger.js';
import { register, type Registration, type RegistrationOptions } from '../lib/discovery/registration.js';
import { main } from '../lib/cli/main.js';
import type { CommandIo } from '../lib/cli/command-io.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { capturingLogger, directClient } from '../testkit/tap-source.js';
import { runFixture } from './support/fixture-process.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';

const cluster = await startEtcd(t);
const hosts = cluster.hosts;
const direct = directClient(t, hosts);

async function registered(t: Test, options: Omit<RegistrationOptions, 'etcd'>): Promise<Registration> {
  const registration = await register({ logger: silentLogger, ...options, etcd: { hosts } });
  t.teardown(() => registration.close());
  return registration;
}

async function inEtcd(client: Etcd3, key: string): Promise<{ value: string; lease: string } | undefined> {
  const kv = (await client.get(key).exec()).kvs[0];
  return kv === undefined ? undefined : { value: kv.value.toString('utf8'), lease: String(kv.lease) };
}

const hex = (leaseId: string): string => BigInt(leaseId).toString(16).padStart(16, '0');

async function leaseList(): Promise<string[]> {
  const { stdout } = await etcdctl(cluster, 'lease', 'list');
  return stdout.split('\n').slice(1).map((line) => line.trim()).filter((line) => line.length > 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('close() deletes the key at once, resolves after drainMillis, and only then revokes the lease', async (t) => {
  const logger = capturingLogger();
  const r = await registered(t, { prefix: 'drain/lib/', key: 'b1', addr: '127.0.0.1:50051', drainMillis: 1500, logger });
  const leaseId = r.leaseId()!;
  const watcher = await direct.watch().key(r.key).create();
  t.teardown(() => watcher.cancel());
  const deleted = new Promise<number>((resolve) => watcher.once('delete', () => resolve(performance.now())));

  const startedAt = performance.now();
  let closedAt = 0;
  const first = r.close();
  void first.then(() => (closedAt = performance.now()));
  t.equal(r.close(), first, 'a second close() returns the same promise');

  const deletedAt = await deleted;
  t.comment(`key deleted ${Math.round(deletedAt - startedAt)} ms after close()`);
  t.ok(deletedAt - startedAt < 500, 'a watcher sees the key deleted at once');
  t.equal(await inEtcd(direct, r.key), undefined, 'a get no longer finds it');
  await sleep(Math.max(0, startedAt + 1000 - performance.now()));
  t.equal(closedAt, 0, 'close() is still draining 1 s in');
  t.ok((await leaseList()).includes(hex(leaseId)), 'the lease is still held during the drain');

  await first;
  const elapsed = closedAt - startedAt;
  t.ok(elapsed >= 1490 && elapsed < 3000, `close() resolved after ${Math.round(elapsed)} ms (drain 1500 ms)`);
  t.notOk((await leaseList()).includes(hex(leaseId)), 'the lease is revoked after the drain');
  t.equal(r.leaseId(), undefined);
  t.match(
    logger.lines.map((l) => l.message),
    ['registered in etcd', 'registration removed', 'draining for 1.5 s before revoking the lease'],
    'the delete and the drain are logged',
  );
  t.equal(await r.close(), undefined, 'a close() after it resolves at once');
});

t.test('no drainMillis: close() resolves right after the delete and the revoke, as before', async (t) => {
  const r = await registered(t, { prefix: 'drain/none/', key: 'b1', addr: '127.0.0.1:50051' });
  const startedAt = Date.now();
  await r.close();
  const elapsed = Date.now() - startedAt;
  t.ok(elapsed < 1000, `close() took ${elapsed} ms`);
  t.equal(await inEtcd(direct, r.key), undefined);
});

t.test('a register() that failed does not drain; bad drainMillis is a ConfigError', async (t) => {
  const startedAt = Date.now();
  await t.rejects(
    register({ etcd: { hosts: [`127.0.0.1:${await freePort()}`] }, prefix: 'p', key: 'k', addr: 'h:1', timeoutMillis: 500, drainMillis: 10_000, logger: silentLogger }),
    { code: 'ANCHORPOOL_ETCD_UNAVAILABLE' },
  );
  const elapsed = Date.now() - startedAt;
  t.ok(elapsed < 2000, `rejected after ${elapsed} ms, without waiting the 10 s drain`);
  for (const drainMillis of [-1, 1.5, Infinity]) {
    await t.rejects(register({ prefix: 'p', key: 'k', addr: 'h:1', drainMillis }), { code: 'ANCHORPOOL_CONFIG', message: /drainMillis/ }, `drainMillis ${drainMillis}`);
  }
});

t.test('a process exits by itself right after a close() with a drain', async (t) => {
  const { code, output } = await runFixture('register-exits', { ETCD_HOSTS: hosts.join(','), MODE: 'drain' }, 10_000);
  t.equal(code, 0, output);
  const millis = Number(/closed after (\d+) ms/.exec(output)?.[1]);
  t.ok(millis >= 990, `close() resolved after ${millis} ms (drain 1000 ms)`);
});

/** `node bin/anchorpool.js register …` as a child process, registered and printed. */
async function startCli(t: Test, name: string, drain: string) {
  const bin = fileURLToPath(new URL('../../bin/anchorpool.js', import.meta.url));
  const key = `drain/cli/${name}`;
  const child = spawn(process.execPath, [bin, 'register', '--etcd', hosts.join(','), '--prefix', 'drain/cli', '--key', name, '--addr', '127.0.0.1:50051', '--drain', drain], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const io = { out: '', err: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (io.out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (io.err += d));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: performance.now() })));
  await waitFor(() => io.out.includes('SIGINT or SIGTERM deletes the key'), { what: `${key} registered (stdout: ${io.out}, stderr: ${io.err})` });
  const stored = await inEtcd(direct, key);
  if (stored === undefined) throw new Error(`${key} is not in etcd`);
  const running = () => child.exitCode === null && child.signalCode === null;
  return { child, key, io, exited, leaseId: stored.lease, running };
}

t.test('CLI --drain 2: SIGTERM deletes the key at once, the process exits 0 after the drain', async (t) => {
  const cli = await startCli(t, 'b1', '2');
  const signalledAt = performance.now();
  cli.child.kill('SIGTERM');
  await waitFor(async () => (await inEtcd(direct, cli.key)) === undefined, { timeoutMs: 1000, intervalMs: 20, what: 'the key deleted within 1 s' });
  const goneAfter = performance.now() - signalledAt;
  t.ok(cli.running(), `the key is gone ${Math.round(goneAfter)} ms after SIGTERM, while the process still runs`);
  await waitFor(() => cli.io.out.includes('draining for 2 s'), { timeoutMs: 1000, what: 'the drain announced' });
  t.match(cli.io.out, `stopping: deleting ${cli.key}, then draining for 2 s (a second SIGINT or SIGTERM exits at once)`);
  t.ok((await leaseList()).includes(hex(cli.leaseId)), 'the lease is held during the drain');
  t.ok(cli.running(), 'still running during the drain');

  const { code, at } = await cli.exited;
  const elapsed = at - signalledAt;
  t.equal(code, 0, `exit 0 (stderr: ${cli.io.err})`);
  t.ok(elapsed >= 1900 && elapsed < 4500, `exited ${Math.round(elapsed)} ms after SIGTERM (drain 2 s)`);
  t.match(cli.io.out, /drained for 2 s; exiting/);
  t.match(cli.io.err, /registration removed/);
  t.match(cli.io.err, /draining for 2 s before revoking the lease/);
  t.notOk((await leaseList()).includes(hex(cli.leaseId)), 'the lease was revoked before the exit');
});

t.test('CLI: a second signal during the drain exits at once, with 128 + its number', async (t) => {
  const cases = [
    ['SIGTERM', 'SIGTERM', 143],
    ['SIGINT', 'SIGTERM', 143],
    ['SIGTERM', 'SIGINT', 130],
  ] as const;
  for (const [firstSignal, second, expected] of cases) {
    const cli = await startCli(t, `second-${firstSignal}-${second}`.toLowerCase(), '30');
    cli.child.kill(firstSignal);
    await waitFor(() => cli.io.out.includes('draining for 30 s'), { timeoutMs: 2000, what: 'the drain announced' });
    await waitFor(async () => (await inEtcd(direct, cli.key)) === undefined, { timeoutMs: 1000, intervalMs: 20, what: 'the key deleted' });
    t.ok(cli.running(), `${firstSignal}: draining`);
    const secondAt = performance.now();
    cli.child.kill(second);
    const { code, at } = await cli.exited;
    t.equal(code, expected, `${firstSignal} then ${second}: exit ${expected}`);
    t.ok(at - secondAt < 1000, `${firstSignal} then ${second}: exited ${Math.round(at - secondAt)} ms after the second signal`);
    t.match(cli.io.err, `${second} again: exiting now, without waiting for the drain`);
  }
});

/** Runs `anchorpool …` in-process, with a fake io. */
async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, interrupted: Promise.resolve() };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('CLI: --drain is documented and validated', async (t) => {
  const help = await run(['register', '--help']);
  t.equal(help.code, 0);
  t.match(help.out, /--drain S +seconds to wait after deleting the key/);
  t.match(help.out, /default 5;/);
  t.match(help.out, /A second SIGINT or SIGTERM during that wait exits at once/);
  const base = ['register', '--etcd', hosts.join(','), '--prefix', 'drain/usage/', '--key', 'b1', '--addr', 'h:1'];
  for (const bad of ['--drain=-1', '--drain=abc', '--drain=1e3', '--drain=', '--drain=3000000', '--drain=0x10']) {
    const { code, err } = await run([...base, bad]);
    t.equal(code, 2, `${bad} exits 2`);
    t.match(err, /--drain must be a number of seconds from 0 to 2147483, got/, bad);
    t.match(err, /usage: anchorpool register/);
  }
  const missing = await run([...base, '--drain']);
  t.equal(missing.code, 2, '--drain without a value exits 2');
});
