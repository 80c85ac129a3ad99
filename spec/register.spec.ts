// register(): a backend's own leased entry in a real etcd — the exact value in both
// formats, discovery seeing it, coming back after `etcdctl lease revoke` and after etcd
// was unreachable past the TTL, close(), the CLI under SIGTERM/SIGINT, bad input,
// unreachable etcd, and passwords kept out of logs and errors. The drain period of
// close() and of the CLI is in register-drain.spec.ts.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { createSource } from '../lib/discovery/create-source.js';
import { parseEndpointValue } from '../lib/discovery/endpoint-entry.js';
import { silentLogger } from '../lib/core/logger.js';
import { register, registrationValue, type Registration, type RegistrationOptions } from '../lib/discovery/registration.js';
import { main } from '../lib/cli/main.js';
import type { CommandIo } from '../lib/cli/command-io.js';
import { etcdctl, startEtcd, waitFor, type EtcdCluster } from '../testkit/tap-etcd.js';
import { capturingLogger, directClient } from '../testkit/tap-source.js';
import { runFixture } from './support/fixture-process.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';

const cluster = await startEtcd(t);
const hosts = cluster.hosts;
const direct = directClient(t, hosts);

/** A registration closed at teardown whatever the test did with it. */
async function registered(t: Test, options: Omit<RegistrationOptions, 'etcd'> & { etcd?: RegistrationOptions['etcd'] }): Promise<Registration> {
  const registration = await register({ logger: silentLogger, ...options, etcd: { hosts, ...options.etcd } });
  t.teardown(() => registration.close());
  return registration;
}

/** The key's value and lease as etcd holds them (the lease id in decimal: it does not fit a JS number). */
async function inEtcd(client: Etcd3, key: string): Promise<{ value: string; lease: string } | undefined> {
  const response = await client.get(key).exec();
  const kv = response.kvs[0];
  return kv === undefined ? undefined : { value: kv.value.toString('utf8'), lease: String(kv.lease) };
}

// etcdctl prints lease ids as 16 zero-padded hex digits (ids whose top nibble is 0 start with 0).
const hex = (leaseId: string): string => BigInt(leaseId).toString(16).padStart(16, '0');

/** The error register() rejects with; an unexpected registration is closed and fails the test. */
async function rejection(pending: Promise<Registration>): Promise<Error & { code?: string }> {
  let registration: Registration;
  try {
    registration = await pending;
  } catch (err) {
    return err as Error & { code?: string };
  }
  await registration.close();
  throw new Error(`register() resolved, but a rejection was expected (${registration.key})`);
}

async function leaseList(etcd: EtcdCluster, ...auth: string[]): Promise<string[]> {
  const { stdout } = await etcdctl(etcd, ...auth, 'lease', 'list');
  return stdout.split('\n').slice(1).map((line) => line.trim()).filter((line) => line.length > 0);
}

async function discovered(t: Test, prefix: string) {
  const source = createSource({ target: `etcd:///${prefix}`, etcd: { hosts }, logger: silentLogger });
  t.teardown(() => source.close());
  return source.ready({ timeoutMillis: 5000 });
}

t.test('json format: the exact value, on the lease, seen by discovery', async (t) => {
  const r = await registered(t, { prefix: 'reg/json', key: 'b1', addr: '127.0.0.1:50051', anchors: 3, metadata: { zone: 'eu-1' } });
  const expected = '{"addr":"127.0.0.1:50051","anchors":3,"metadata":{"zone":"eu-1"}}';
  t.equal(r.key, 'reg/json/b1', 'a missing trailing / of the prefix is added');
  t.equal(r.value, expected);
  t.same(await inEtcd(direct, 'reg/json/b1'), { value: expected, lease: r.leaseId() }, 'the value in etcd, bound to the lease');
  t.match(parseEndpointValue(r.key, Buffer.from(expected)), { ok: true, endpoint: { addr: '127.0.0.1:50051', anchors: 3, format: 'json', metadata: { zone: 'eu-1' } } });
  const snapshot = await discovered(t, 'reg/json/');
  t.match(snapshot.endpoints.get('reg/json/b1'), { addr: '127.0.0.1:50051', anchors: 3, format: 'json' }, 'an etcd source sees the endpoint');
});

t.test("go format: exactly what etcd's Go endpoints.Manager writes", async (t) => {
  const r = await registered(t, { prefix: 'reg/go/', key: 'b2', addr: '[::1]:50052', anchors: 2, format: 'go', metadata: { label: 'a<b&c', weight: 5 } });
  // Go marshals the Update struct in field order and a map with sorted keys, HTML-escaped.
  const expected = '{"Op":0,"Addr":"[::1]:50052","Metadata":{"anchors":2,"label":"a\\u003cb\\u0026c","weight":5}}';
  t.equal(r.value, expected);
  t.equal((await inEtcd(direct, 'reg/go/b2'))?.value, expected);
  t.match(parseEndpointValue(r.key, Buffer.from(expected)), { ok: true, endpoint: { addr: '[::1]:50052', anchors: 2, format: 'go', metadata: { label: 'a<b&c', weight: 5 } } });
  const snapshot = await discovered(t, 'reg/go/');
  t.match(snapshot.endpoints.get('reg/go/b2'), { addr: '[::1]:50052', anchors: 2, format: 'go' });

  t.equal(registrationValue('go', '10.0.0.6:50051', 1), '{"Op":0,"Addr":"10.0.0.6:50051","Metadata":{"anchors":1}}');
  for (const addr of ['10.0.0.5:50051', 'backend.local:9000', 'unix:/run/echo.sock']) {
    const json = parseEndpointValue('k', Buffer.from(registrationValue('json', addr, 7)));
    const go = parseEndpointValue('k', Buffer.from(registrationValue('go', addr, 7)));
    t.ok(json.ok && go.ok, `${addr}: both formats parse`);
    if (json.ok && go.ok) t.same([go.endpoint.addr, go.endpoint.anchors], [json.endpoint.addr, json.endpoint.anchors], `${addr}: same addr and anchors`);
  }
});

t.test('zone: the json "zone" field or Go Metadata.zone, exactly, and discovery reads it back', async (t) => {
  const json = await registered(t, { prefix: 'reg/zone/', key: 'j', addr: '127.0.0.1:50051', anchors: 2, zone: 'eu-west-1a', metadata: { rack: 'r1' } });
  t.equal(json.value, '{"addr":"127.0.0.1:50051","anchors":2,"zone":"eu-west-1a","metadata":{"rack":"r1"}}');
  const go = await registered(t, { prefix: 'reg/zone/', key: 'g', addr: '127.0.0.1:50052', anchors: 3, format: 'go', zone: 'topology.kubernetes.io/zone', metadata: { weight: 5 } });
  t.equal(go.value, '{"Op":0,"Addr":"127.0.0.1:50052","Metadata":{"anchors":3,"weight":5,"zone":"topology.kubernetes.io/zone"}}', 'sorted into Metadata as Go marshals a map');
  const plain = await registered(t, { prefix: 'reg/zone/', key: 'n', addr: '127.0.0.1:50053' });
  t.equal(plain.value, '{"addr":"127.0.0.1:50053","anchors":1}', 'without the option the value is as before');
  t.equal((await inEtcd(direct, 'reg/zone/g'))?.value, go.value);
  const snapshot = await discovered(t, 'reg/zone/');
  t.match(snapshot.endpoints.get('reg/zone/j'), { addr: '127.0.0.1:50051', anchors: 2, zone: 'eu-west-1a', format: 'json', metadata: { rack: 'r1' } });
  t.match(snapshot.endpoints.get('reg/zone/g'), { addr: '127.0.0.1:50052', anchors: 3, zone: 'topology.kubernetes.io/zone', format: 'go' });
  t.notOk('zone' in snapshot.endpoints.get('reg/zone/n')!, 'no zone option: no zone');

  t.equal(registrationValue('json', 'h:1', 1, undefined, 'z1'), '{"addr":"h:1","anchors":1,"zone":"z1"}');
  t.equal(registrationValue('go', 'h:1', 1, undefined, 'z1'), '{"Op":0,"Addr":"h:1","Metadata":{"anchors":1,"zone":"z1"}}');
  t.equal(registrationValue('json', 'h:1', 1, { zone: 'z2' }), '{"addr":"h:1","anchors":1,"metadata":{"zone":"z2"}}', 'metadata.zone alone is still written as given');
  const fromMetadata = parseEndpointValue('k', Buffer.from(registrationValue('go', 'h:1', 1, { zone: 'z2' })));
  t.match(fromMetadata, { ok: true, endpoint: { zone: 'z2' } }, 'and read as the zone');
});

t.test('etcdctl lease revoke removes the key; it comes back on a new lease within the TTL', async (t) => {
  const r = await registered(t, { prefix: 'reg/revoke/', key: 'b1', addr: '127.0.0.1:50051', ttlSeconds: 3 });
  const first = r.leaseId()!;
  t.ok(first !== undefined);
  t.ok((await leaseList(cluster)).includes(hex(first)), `etcdctl lease list shows the lease in hex (${hex(first)})`);
  const lost: unknown[] = [];
  r.on('lost', (event) => lost.push(event));
  const again = new Promise<{ key: string; leaseId: string }>((resolve) => r.once('registered', resolve));

  // Watch the key to time the gap exactly: from the delete the revoke causes to the new put.
  const watcher = await direct.watch().key(r.key).create();
  t.teardown(() => watcher.cancel());
  let deletedAt = 0;
  const back = new Promise<number>((resolve) => {
    watcher.on('delete', () => (deletedAt = performance.now()));
    watcher.on('put', () => resolve(performance.now()));
  });
  await etcdctl(cluster, 'lease', 'revoke', hex(first));
  const backAt = await Promise.race([back, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('the key did not come back within 3 s')), 3000))]);
  t.ok(deletedAt > 0, 'the revoke deleted the key');
  t.comment(`key back ${Math.round(backAt - deletedAt)} ms after the revoke (TTL 3 s)`);
  t.ok(backAt - deletedAt < 3000, 'back within the TTL');

  const event = await again;
  t.not(event.leaseId, first, 'on a new lease');
  t.equal(r.leaseId(), event.leaseId);
  t.match(lost, [{ key: 'reg/revoke/b1', error: { message: /expired or revoked/ } }], 'one lost event');
  t.same(await inEtcd(direct, r.key), { value: r.value, lease: event.leaseId });
  // Listed by a separate etcdctl process: allow etcd a moment under load.
  const leases = await waitFor(
    async () => {
      const listed = await leaseList(cluster);
      return listed.includes(hex(event.leaseId)) && !listed.includes(hex(first)) ? listed : false;
    },
    { timeoutMs: 5000, what: `etcdctl lease list to show ${hex(event.leaseId)} and not ${hex(first)}` },
  ).catch(() => leaseList(cluster));
  t.ok(leases.includes(hex(event.leaseId)) && !leases.includes(hex(first)), `etcd holds the new lease, not the revoked one (listed: ${leases.join(', ')})`);
});

t.test('close() deletes the key and revokes the lease; a second close() is harmless', async (t) => {
  const r = await registered(t, { prefix: 'reg/close/', key: 'b1', addr: '127.0.0.1:50051' });
  const leaseId = r.leaseId()!;
  t.ok(await inEtcd(direct, r.key));
  await r.close();
  t.equal(await inEtcd(direct, r.key), undefined, 'the key is gone when close() resolves');
  t.notOk((await leaseList(cluster)).includes(hex(leaseId)), 'the lease is revoked');
  t.equal(r.leaseId(), undefined);
  await r.close();
  t.pass('a second close() resolves');

  // A key that another writer took over since is not ours to delete.
  const other = await registered(t, { prefix: 'reg/close/', key: 'b2', addr: '127.0.0.1:50052' });
  await etcdctl(cluster, 'put', 'reg/close/b2', '10.9.9.9:1');
  await other.close();
  t.equal((await inEtcd(direct, 'reg/close/b2'))?.value, '10.9.9.9:1', 'close() leaves a key that is no longer on its lease');
});

t.test('a second close() is the first one\'s promise: it settles only once the key is removed', async (t) => {
  const r = await registered(t, { prefix: 'reg/close-twice/', key: 'b1', addr: '127.0.0.1:50051' });
  const first = r.close();
  const second = r.close();
  t.equal(second, first, 'the same promise');
  await second;
  t.equal(await inEtcd(direct, r.key), undefined, 'the key is gone when the second close() resolves');
});

t.test('a throwing listener is rethrown on a later tick: the process dies of it', async (t) => {
  const { code, output } = await runFixture('register-exits', { ETCD_HOSTS: hosts.join(','), MODE: 'listener-throws' }, 15_000);
  t.match(output, /second listener got lost/, 'the other listener got the event');
  t.match(output, /Error: listener boom/, "the listener's error is printed");
  t.not(code, 0, 'the process died of the uncaught error');
  t.notMatch(output, /closed/, 'it did not run on as if nothing happened');
});

t.test('a throwing listener does not stop the registration: it registers again', async (t) => {
  const { code, output } = await runFixture('register-exits', { ETCD_HOSTS: hosts.join(','), MODE: 'listener-throws-handled' }, 15_000);
  t.equal(code, 0, output);
  t.match(output, /uncaught: listener boom/);
  t.match(output, /registered again/);
  t.match(output, /closed/);
});

t.test('a process exits by itself after close(), and after a failed register()', async (t) => {
  const closed = await runFixture('register-exits', { ETCD_HOSTS: hosts.join(','), MODE: 'close' }, 10_000);
  t.equal(closed.code, 0, `exited by itself after close() (output: ${closed.output})`);
  t.match(closed.output, /closed/);
  const failed = await runFixture('register-exits', { ETCD_HOSTS: `127.0.0.1:${await freePort()}`, MODE: 'unreachable' }, 10_000);
  t.equal(failed.code, 0, `exited by itself after the rejection (output: ${failed.output})`);
  t.match(failed.output, /rejected ANCHORPOOL_ETCD_UNAVAILABLE/);
});

t.test('etcd unreachable: rejects with ANCHORPOOL_ETCD_UNAVAILABLE within timeoutMillis', async (t) => {
  // A black hole: accepts connections and never answers, so every call waits for its deadline.
  const sockets = new Set<Socket>();
  const blackHole = createServer((socket) => sockets.add(socket.on('error', () => undefined)));
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    blackHole.close();
  });
  const cases = {
    refused: { hosts: [`127.0.0.1:${await freePort()}`] },
    'black hole, with auth': { hosts: [`127.0.0.1:${(blackHole.address() as AddressInfo).port}`], auth: { username: 'root', password: 'pw' } },
  };
  for (const [name, etcd] of Object.entries(cases)) {
    const startedAt = Date.now();
    const error = await rejection(register({ etcd, prefix: 'reg/', key: 'x', addr: 'h:1', timeoutMillis: 1000, logger: silentLogger }));
    const elapsed = Date.now() - startedAt;
    t.equal(error.code, 'ANCHORPOOL_ETCD_UNAVAILABLE', `${name}: ${error.message}`);
    t.match(error.message, new RegExp(`could not register "reg/x" in etcd at ${etcd.hosts[0]!.replace(/\./g, '\\.')} within 1000 ms`));
    t.ok(elapsed >= 900 && elapsed < 1500, `${name}: rejected after ${elapsed} ms, at its timeout`);
  }
});

t.test('etcd unreachable past the TTL: the key expires, and comes back when etcd does', async (t) => {
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: cluster.members[0]!.clientPort });
  t.teardown(() => proxy.close());
  const r = await registered(t, { prefix: 'reg/outage/', key: 'b1', addr: '127.0.0.1:50051', ttlSeconds: 2, etcd: { hosts: [`${proxy.host}:${proxy.port}`], retryMaxMillis: 500 } });
  const first = r.leaseId();
  const lost = new Promise<{ key: string; error: Error }>((resolve) => r.once('lost', resolve));
  proxy.cut();
  await waitFor(async () => (await inEtcd(direct, r.key)) === undefined, { timeoutMs: 5000, what: 'the key to expire with its lease' });
  proxy.resume();
  const resumedAt = performance.now();
  t.match(await lost, { key: 'reg/outage/b1', error: { message: /expired|lost connection/ } }, 'the loss is reported');
  await waitFor(async () => (await inEtcd(direct, r.key))?.lease === r.leaseId(), { timeoutMs: 8000, what: 'the key back on a new lease' });
  t.not(r.leaseId(), first);
  t.comment(`key back ${Math.round(performance.now() - resumedAt)} ms after etcd became reachable again`);
});

t.test('close() with etcd frozen ends within dialTimeoutMillis; the key then expires with its lease', async (t) => {
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: cluster.members[0]!.clientPort });
  t.teardown(() => proxy.close());
  const logger = capturingLogger();
  const r = await registered(t, { prefix: 'reg/frozen/', key: 'b1', addr: '127.0.0.1:50051', ttlSeconds: 2, logger, etcd: { hosts: [`${proxy.host}:${proxy.port}`], dialTimeoutMillis: 1000 } });
  proxy.pause();
  const startedAt = Date.now();
  await r.close();
  const elapsed = Date.now() - startedAt;
  t.ok(elapsed < 1500, `close() returned after ${elapsed} ms`);
  t.match(logger.lines.at(-1), { level: 'warn', message: /could not remove the registration; it expires with its lease within 2 s/ });
  await waitFor(async () => (await inEtcd(direct, r.key)) === undefined, { timeoutMs: 4000, what: 'the key to expire' });
});

/** Runs `anchorpool …` in-process, with a fake io. */
async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = { out: (l) => out.push(l), err: (l) => err.push(l), env, interrupted: Promise.resolve() };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('CLI: registers until SIGTERM or SIGINT, then deletes the key and exits 0', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/anchorpool.js', import.meta.url));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const key = `reg/cli/${signal.toLowerCase()}`;
    const child = spawn(process.execPath, [bin, 'register', '--etcd', hosts.join(','), '--prefix', 'reg/cli', '--key', signal.toLowerCase(), '--addr', '127.0.0.1:50051', '--anchors', '4', '--ttl', '5', '--format', 'go', '--drain', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));

    const stored = await waitFor(() => inEtcd(direct, key), { what: `${key} in etcd` });
    await waitFor(() => out.includes('SIGINT or SIGTERM deletes the key'), { what: 'the registration printed' });
    t.equal(stored.value, '{"Op":0,"Addr":"127.0.0.1:50051","Metadata":{"anchors":4}}');
    t.match(out, `registered ${key} = ${stored.value}`);
    t.match(out, `lease ${hex(stored.lease)} (hex, as etcdctl shows it), TTL 5 s`);
    child.kill(signal);
    const { code } = await exited;
    t.equal(code, 0, `exit 0 after ${signal} (stderr: ${err})`);
    t.equal(await inEtcd(direct, key), undefined, `${signal}: the key is gone`);
    t.match(err, /registration removed/);
  }
});

t.test('CLI: usage errors exit 2 and say what is wrong; unreachable etcd exits 1', async (t) => {
  const base = ['register', '--etcd', hosts.join(','), '--prefix', 'reg/usage/'];
  const cases: [string[], RegExp][] = [
    [[...base, '--addr', 'h:1'], /--key NAME is required/],
    [[...base, '--key', 'b1'], /--addr HOST:PORT is required/],
    [['register', '--key', 'b1', '--addr', 'h:1'], /--prefix P is required/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--anchors', '0'], /--anchors must be an integer from 1 to 64, got "0"/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--anchors', '65'], /--anchors must be an integer from 1 to 64/],
    [[...base, '--key', 'b1', '--addr', '10.0.0.5'], /--addr: missing port in "10\.0\.0\.5"/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--format', 'xml'], /--format must be json or go, got "xml"/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--zone', 'eu west'], /--zone must be 1 to 128 characters of A-Z a-z 0-9 \. _ : \/ -, got "eu west"/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--zone', ''], /--zone must be 1 to 128 characters of A-Z a-z 0-9 \. _ : \/ -, got ""/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--ttl', '1'], /--ttl must be an integer from 2 to/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--timeout', 'soon'], /--timeout must be an integer/],
    [[...base, '--key', '/b1', '--addr', 'h:1'], /key: must not start with "\/"/],
    [[...base, '--key', 'tls.key', '--key', 'b1', '--addr', 'h:1'], /--key given more than once.*--key-file FILE/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--key-file', 'k.pem'], /--cert and --key-file need --cacert/],
    [[...base, '--key', 'b1', '--addr', 'h:1', '--user', 'root'], /--password-file FILE or ANCHORPOOL_ETCD_PASSWORD/],
    [['register', '--etcd', 'nope', '--prefix', 'p', '--key', 'b1', '--addr', 'h:1'], /etcd\.hosts\.0: missing port/],
    [[...base, '--target', 'etcd:///x/'], /Unknown option '--target'/],
  ];
  for (const [argv, message] of cases) {
    const { code, err } = await run(argv);
    t.equal(code, 2, `${argv.slice(1).join(' ')} exits 2`);
    t.match(err, message, argv.slice(1).join(' '));
    t.match(err, /usage: anchorpool register/, 'with the usage');
  }
  const port = await freePort();
  const unreachable = await run(['register', '--etcd', `127.0.0.1:${port}`, '--prefix', 'p', '--key', 'b1', '--addr', 'h:1', '--timeout', '300']);
  t.equal(unreachable.code, 1);
  t.match(unreachable.err, /anchorpool register: could not register "p\/b1" in etcd at .* within 300 ms/);
});

t.test('CLI: --zone is documented and written into the value in both formats', async (t) => {
  const help = await run(['register', '--help']);
  t.equal(help.code, 0);
  t.match(help.out, /\[--zone ZONE\]/, 'in the usage line');
  t.match(help.out, /--zone ZONE +the zone the backend runs in/);
  t.match(help.out, /written as "zone" \(json\) or Metadata\.zone \(go\)/);
  const base = ['register', '--etcd', hosts.join(','), '--prefix', 'reg/cli-zone/', '--addr', '127.0.0.1:50051', '--anchors', '2', '--drain', '0', '--zone', 'eu-west-1a'];
  const json = await run([...base, '--key', 'j']);
  t.equal(json.code, 0, json.err);
  t.match(json.out, 'registered reg/cli-zone/j = {"addr":"127.0.0.1:50051","anchors":2,"zone":"eu-west-1a"}');
  const go = await run([...base, '--key', 'g', '--format', 'go']);
  t.equal(go.code, 0, go.err);
  t.match(go.out, 'registered reg/cli-zone/g = {"Op":0,"Addr":"127.0.0.1:50051","Metadata":{"anchors":2,"zone":"eu-west-1a"}}');
});

t.test('bad options: a ConfigError naming each one', async (t) => {
  const error = await rejection(register({ prefix: '', key: '/b1', addr: 'h', anchors: 0, ttlSeconds: 1, format: 'xml', bogus: 1 } as never));
  t.equal(error.code, 'ANCHORPOOL_CONFIG');
  for (const name of ['prefix', 'key', 'addr', 'anchors', 'ttlSeconds', 'format', 'bogus']) t.match(error.message, name, `names ${name}`);
  await t.rejects(register({ prefix: 'p', key: 'k', addr: 'h:1', etcd: { prefix: 'q/' } }), { code: 'ANCHORPOOL_CONFIG', message: /etcd\.prefix: is not used by register/ });
  await t.rejects(register({ prefix: 'p', key: 'k', addr: 'h:1', metadata: { anchors: 2 } }), { code: 'ANCHORPOOL_CONFIG', message: /metadata\.anchors: set the anchors option instead/ });
  await t.rejects(register({ prefix: 'p', key: 'k', addr: 'h:1', metadata: { big: 'x'.repeat(70_000) } }), { message: /discovery would reject the value: value is \d+ bytes, over the limit/ });
  const rule = 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : / -';
  for (const zone of ['', 'eu west', 'a@b', 'z'.repeat(129), 5, null]) {
    const zoneError = await rejection(register({ prefix: 'p', key: 'k', addr: 'h:1', zone } as never));
    t.equal(zoneError.code, 'ANCHORPOOL_CONFIG', `zone ${JSON.stringify(zone)}`);
    t.equal(zoneError.message, `invalid register options: zone: ${rule}`, `zone ${JSON.stringify(zone)}: the reason`);
  }
  await t.rejects(register({ prefix: 'p', key: 'k', addr: 'h:1', zone: 'a', metadata: { zone: 'a' } }), {
    code: 'ANCHORPOOL_CONFIG',
    message: 'invalid register options: metadata.zone: is set by the zone option; give only one of them',
  });
  await t.rejects(register({ prefix: 'p', key: 'k', addr: 'h:1', metadata: { zone: 'eu west' } }), {
    code: 'ANCHORPOOL_CONFIG',
    message: `invalid register options: discovery would reject the value: metadata.zone: ${rule}`,
  });
});

t.test('a password given in the options never reaches the logger or an error', async (t) => {
  const secured = await startEtcd(t);
  const password = 'Pa55-never-logged-4d1e';
  const wrong = 'Wr0ng-never-logged-9b2c';
  await etcdctl(secured, 'user', 'add', `root:${password}`);
  await etcdctl(secured, 'auth', 'enable');
  const logger = capturingLogger();
  const options = { prefix: 'reg/secure/', key: 'b1', addr: '127.0.0.1:50051', ttlSeconds: 2, logger };
  const texts: string[] = [];

  const startedAt = Date.now();
  const refused = await rejection(register({ ...options, etcd: { hosts: secured.hosts, auth: { username: 'root', password: wrong } } }));
  t.equal(refused.code, 'ANCHORPOOL_ETCD_AUTH', refused.message);
  t.match(refused.message, /refused to register "reg\/secure\/b1": .*authentication failed/);
  t.ok(Date.now() - startedAt < 3000, 'refused at once, not after the timeout');
  texts.push(refused.message, inspect(refused, { depth: 10 }));

  const invalid = await rejection(register({ ...options, anchors: 0, etcd: { hosts: secured.hosts, auth: { username: 'root', password } } }));
  texts.push(invalid.message, inspect(invalid, { depth: 10 }));

  const r = await register({ ...options, etcd: { hosts: secured.hosts, auth: { username: 'root', password } } });
  t.teardown(() => r.close());
  const again = new Promise((resolve) => r.once('registered', resolve));
  await etcdctl(secured, '--user', `root:${password}`, 'lease', 'revoke', hex(r.leaseId()!));
  await again;
  texts.push(inspect(r, { depth: 10 }));
  await r.close();
  t.match(logger.lines.map((l) => l.message), ['registered in etcd', 'registration lease lost; registering again', 'registered in etcd again', 'registration removed'], 'registration, loss, re-registration and removal were logged');
  for (const line of logger.lines) texts.push(`${line.message} ${JSON.stringify(line.fields)}`);
  for (const text of texts) {
    t.notOk(text.includes(password) || text.includes(wrong), `no password in: ${text.slice(0, 100)}`);
  }
});
