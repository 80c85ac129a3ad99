// `anchorpool status` and `anchorpool watch` against a real etcd and real backends:
// the table, JSON, anchor ranges (maxAnchors) and extra anchors, exit codes, usage errors,
// and secrets kept out of every output.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../lib/cli/main.js';
import type { CommandIo } from '../lib/cli/command-io.js';
import { renderReport, withAnchorStates, type StatusReport } from '../lib/cli/report.js';
import { chooseSubset, rendezvousOrder } from '../lib/anchors/subset.js';
import { assignSubsets } from '../lib/anchors/coordinated-assignment.js';
import { createPool, silentLogger, type AnchorInfo, type PoolStats } from '../lib/index.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { startBackend } from '../testkit/tap-backend.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';

const cluster = await startEtcd(t);
const etcdFlag = cluster.hosts.join(',');
const backend = await startBackend(t, { name: 'up' });
await etcdctl(cluster, 'put', 'cli/echo/native', JSON.stringify({ addr: backend.address, anchors: 2 }));
await etcdctl(cluster, 'put', 'cli/echo/go', JSON.stringify({ Op: 0, Addr: backend.address, Metadata: { anchors: 3 } }));
await etcdctl(cluster, 'put', 'cli/echo/bad', '{"addr":"10.0.0.7"}');

interface Run {
  code: number;
  out: string;
  err: string;
}

function io(env: NodeJS.ProcessEnv, interrupted: Promise<void> = Promise.resolve(), out: string[] = [], err: string[] = []): CommandIo {
  return { out: (l) => out.push(l), err: (l) => err.push(l), env, interrupted };
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, io(env, Promise.resolve(), out, err));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('status --subset-size shows which keys a client keeps and why, from its rendezvous ranking; with --connect, status\'s own pool keeps them', async (t) => {
  const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
  for (const key of keys) await etcdctl(cluster, 'put', `cli/subset/${key}`, `${backend.address}#1`);
  const expected = chooseSubset(rendezvousOrder('client-7', keys.map((k) => `cli/subset/${k}`)), 2, () => 'unknown');
  const json = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/subset/', '--subset-size', '2', '--client-id', 'client-7', '--json']);
  t.equal(json.code, 0);
  const report = JSON.parse(json.out) as StatusReport;
  t.same(report.subset, { size: 2, mode: 'rendezvous', clientId: 'client-7', keys: 2 });
  t.same(report.endpoints.filter((e) => e.subset === 'chosen').map((e) => e.key).sort(), [...expected].sort(), 'the two keys of highest rank for client-7');
  t.equal(report.endpoints.filter((e) => e.subset === '-').length, 4);
  const table = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/subset/', '--subset-size', '2', '--client-id', 'client-7']);
  t.match(table.out, /subset: 2 of 6 keys for client client-7 \(size 2, rendezvous\)/);
  t.match(table.out, /KEY\s+ADDRESS\s+ANCHORS\s+FORMAT\s+SUBSET/);
  const connected = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/subset/', '--subset-size', '2', '--client-id', 'client-7', '--connect', '--json', '--timeout', '5000']);
  t.equal(connected.code, 0, 'the keys outside the subset are not reported unreachable');
  const dialled = JSON.parse(connected.out) as StatusReport;
  t.same(dialled.endpoints.filter((e) => e.states!.READY > 0).map((e) => e.key).sort(), [...expected].sort(), 'status dialled only its subset');
  const usage = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/subset/', '--subset-size', '2']);
  t.equal(usage.code, 2);
  t.match(usage.err, /--subset-size without --connect needs --client-id/);
  t.equal((await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/subset/', '--subset-size', '0', '--client-id', 'x'])).code, 2, 'a size of 0 is a usage error');
});

/** A coordinated client's registration as the library writes it, put by etcdctl: no lease, it stays until deleted. */
async function putClient(prefix: string, id: string, pid: number): Promise<void> {
  const value = JSON.stringify({ clientId: id, host: `host-${id}`, pid, instance: `instance-${id}`, since: '2025-01-02T03:04:05.000Z' });
  await etcdctl(cluster, 'put', `${prefix}${id}`, value);
}

async function clientKeys(prefix: string): Promise<string[]> {
  const { stdout } = await etcdctl(cluster, 'get', '--prefix', prefix, '--keys-only');
  return stdout.split('\n').filter((line) => line.length > 0);
}

t.test('status --subset-mode coordinated reads the registered clients, registers nothing: per key how many clients keep it, and the clients', async (t) => {
  const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8'].map((k) => `cli/coord/${k}`);
  for (const key of keys) await etcdctl(cluster, 'put', key, `${backend.address}#1`);
  const clientsPrefix = 'anchorpool.clients/cli/coord/';
  const ids = ['c1', 'c2', 'c3', 'c4'];
  for (const [i, id] of ids.entries()) await putClient(clientsPrefix, id, 100 + i);
  const assignment = assignSubsets(ids, keys, 2);
  const base = ['status', '--etcd', etcdFlag, '--prefix', 'cli/coord/', '--subset-size', '2', '--subset-mode', 'coordinated'];

  const json = await run([...base, '--json']);
  t.equal(json.code, 0, json.err);
  const fleet = JSON.parse(json.out) as StatusReport;
  t.same(fleet.subset, { size: 2, mode: 'coordinated', clientsPrefix, clients: 4 }, 'the default clients prefix, as the library derives it');
  t.same(
    fleet.endpoints.map((e) => [e.key, e.clients]),
    keys.map((key) => [key, 1]),
    '4 clients × 2 keys over 8 keys: every key in exactly one subset',
  );
  t.ok(fleet.endpoints.every((e) => e.subset === undefined), 'no SUBSET: no client named');
  t.same(
    fleet.clients,
    ids.map((id, rank) => ({ clientId: id, host: `host-${id}`, pid: 100 + rank, since: '2025-01-02T03:04:05.000Z', rank, keys: assignment.get(id) })),
    'the clients by rank, each with its subset as the library computes it',
  );
  t.same(await clientKeys('anchorpool.clients/'), ids.map((id) => `${clientsPrefix}${id}`), 'status registered nothing');

  const table = await run(base);
  t.equal(table.code, 0);
  t.match(table.out, /subset: size 2, coordinated among 4 client\(s\) under anchorpool\.clients\/cli\/coord\/; each key in 1 of their subsets/);
  t.match(table.out, /KEY\s+ADDRESS\s+ANCHORS\s+FORMAT\s+CLIENTS\n/);
  t.notMatch(table.out, /SUBSET/);
  t.match(table.out, /cli\/coord\/k1\s+\S+\s+1\s+text\s+1\n/);
  t.match(table.out, /CLIENT\s+HOST\s+PID\s+SINCE\n/);
  t.match(table.out, /c3\s+host-c3\s+102\s+2025-01-02T03:04:05\.000Z/);

  // One registered client: its rank among the sorted ids, and its subset.
  for (const [rank, id] of ids.entries()) {
    const one = JSON.parse((await run([...base, '--client-id', id, '--json'])).out) as StatusReport;
    t.same(one.subset, { size: 2, mode: 'coordinated', clientId: id, keys: 2, clientsPrefix, rank, clients: 4, registered: true }, `${id}'s place`);
    t.same(one.endpoints.filter((e) => e.subset === 'chosen').map((e) => e.key).sort(), [...assignment.get(id)!].sort(), `${id}'s subset`);
    t.equal(one.endpoints.filter((e) => e.subset === '-').length, 6);
    t.equal(one.clients, undefined, 'no client list for one client');
  }
  const c2 = await run([...base, '--client-id', 'c2']);
  t.match(c2.out, /subset: 2 of 8 keys for client c2 \(size 2, coordinated: rank 1 of 4 client\(s\) under anchorpool\.clients\/cli\/coord\/\)/);
  t.match(c2.out, /KEY\s+ADDRESS\s+ANCHORS\s+FORMAT\s+SUBSET\n/);

  // A client not registered counts at its sorted place: c0 first of 5, c9 last of 5.
  for (const [id, rank] of [['c0', 0], ['c9', 4]] as const) {
    const absent = JSON.parse((await run([...base, '--client-id', id, '--json'])).out) as StatusReport;
    t.same(absent.subset, { size: 2, mode: 'coordinated', clientId: id, keys: 2, clientsPrefix, rank, clients: 5, registered: false }, `${id} counted at its place`);
    t.same(absent.endpoints.filter((e) => e.subset === 'chosen').map((e) => e.key).sort(), [...assignSubsets([...ids, id], keys, 2).get(id)!].sort(), `${id}'s subset among 5`);
  }
  t.match((await run([...base, '--client-id', 'c0'])).out, /rank 0 of 5 client\(s\) under anchorpool\.clients\/cli\/coord\/, counting c0 there although it is not registered\)/);
  t.same(await clientKeys('anchorpool.clients/'), ids.map((id) => `${clientsPrefix}${id}`), 'still nothing registered by status');

  // --clients-prefix (a trailing / added, as the option does); 3 clients × 3 keys over 8: each key in 1 or 2 subsets.
  for (const [i, id] of ['a', 'b', 'c'].entries()) await putClient('fleets/coord-clients/', id, 200 + i);
  const custom = JSON.parse((await run([...base.slice(0, -3), '3', '--subset-mode', 'coordinated', '--clients-prefix', 'fleets/coord-clients', '--json'])).out) as StatusReport;
  t.same(custom.subset, { size: 3, mode: 'coordinated', clientsPrefix: 'fleets/coord-clients/', clients: 3 });
  const counts = custom.endpoints.map((e) => e.clients!);
  t.equal(counts.reduce((a, b) => a + b, 0), 9, 'every client keeps 3 keys');
  t.ok(counts.every((c) => c === 1 || c === 2), `each key in 1 or 2 subsets: ${counts.join(',')}`);
  const customAssignment = assignSubsets(['a', 'b', 'c'], keys, 3);
  t.same(custom.clients!.map((c) => c.keys), ['a', 'b', 'c'].map((id) => customAssignment.get(id)));
  t.match((await run([...base.slice(0, -3), '3', '--subset-mode', 'coordinated', '--clients-prefix', 'fleets/coord-clients'])).out, /each key in 1 to 2 of their subsets/);

  // No client registered: every key in none.
  const empty = JSON.parse((await run([...base, '--clients-prefix', 'fleets/nobody/', '--json'])).out) as StatusReport;
  t.same(empty.subset, { size: 2, mode: 'coordinated', clientsPrefix: 'fleets/nobody/', clients: 0 });
  t.ok(empty.endpoints.every((e) => e.clients === 0));
  t.same(empty.clients, []);
});

t.test('status --subset-mode coordinated shows the subsets live coordinated pools keep', async (t) => {
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => `cli/live/${k}`);
  for (const key of keys) await etcdctl(cluster, 'put', key, `${backend.address}#1`);
  // Two real clients, and a third registered by etcdctl (a client elsewhere) between them.
  await putClient('anchorpool.clients/cli/live/', 'p2', 300);
  const pools = ['p1', 'p3'].map((clientId) => {
    const pool = createPool({ target: 'etcd:///cli/live/', etcd: { hosts: cluster.hosts }, logger: silentLogger, subset: { size: 2, mode: 'coordinated', clientId, ttlSeconds: 2 } });
    t.teardown(() => pool.close());
    return pool;
  });
  const kept = await waitFor(
    () => {
      const subsets = pools.map((pool) => pool.stats().subset);
      const settled = subsets.every((s) => s?.coordination?.clients === 3 && s.keys.length === 2 && s.keys.every((k) => k.why === 'chosen'));
      return settled ? subsets.map((s) => s!.keys.map((k) => k.key).sort()) : false;
    },
    { what: 'both pools placed among 3 clients, their subsets settled' },
  );
  const base = ['status', '--etcd', etcdFlag, '--prefix', 'cli/live/', '--subset-size', '2', '--subset-mode', 'coordinated', '--json'];
  const fleet = JSON.parse((await run(base)).out) as StatusReport;
  t.same(fleet.clients!.map((c) => c.clientId), ['p1', 'p2', 'p3']);
  t.same([[...fleet.clients![0]!.keys].sort(), [...fleet.clients![2]!.keys].sort()], kept, 'the subsets status computes are the ones the pools keep');
  t.same(fleet.endpoints.map((e) => e.clients), [1, 1, 1, 1, 1, 1], '3 × 2 over 6 keys');
  t.match(fleet.clients![0], { host: String, pid: process.pid, since: String }, 'a pool\'s value names its process');
  for (const [i, clientId] of ['p1', 'p3'].entries()) {
    const one = JSON.parse((await run([...base, '--client-id', clientId])).out) as StatusReport;
    t.same(one.endpoints.filter((e) => e.subset === 'chosen').map((e) => e.key).sort(), kept[i], `status --client-id ${clientId} shows what ${clientId} keeps`);
    t.match(one.subset, { rank: i * 2, clients: 3, registered: true });
  }
});

t.test('status --subset-mode coordinated refuses --connect (it would join the fleet), overlapping clients prefixes and pass:///', async (t) => {
  const base = ['status', '--etcd', etcdFlag, '--prefix', 'cli/coord/', '--subset-size', '2', '--subset-mode', 'coordinated'];
  const before = await clientKeys('anchorpool.clients/');
  const cases: [string[], RegExp][] = [
    [[...base, '--connect'], /--subset-mode coordinated with --connect would register this command as a client and move every other client's subset; drop --connect/],
    [[...base, '--client-id', 'c1', '--connect'], /would register this command as a client .*; drop --connect/],
    [[...base, '--health'], /with --health \(which dials, as --connect does\) would register this command as a client .*; drop --health/],
    [[...base, '--metrics-port', '0'], /drop --metrics-port/],
    [[...base, '--clients-prefix', 'cli/coord/clients/'], /--clients-prefix "cli\/coord\/clients\/" is inside the backends' prefix "cli\/coord\/"/],
    [[...base, '--clients-prefix', 'cli/'], /--clients-prefix "cli\/" contains the backends' prefix "cli\/coord\/"/],
    [[...base, '--clients-prefix', ''], /--clients-prefix must not be empty/],
    [['status', '--target', `pass:///${backend.address}`, '--subset-size', '2', '--subset-mode', 'coordinated'], /--subset-mode coordinated needs an etcd target/],
    [[...base.slice(0, -1), 'aperture'], /--subset-mode must be rendezvous or coordinated, got aperture/],
    [['status', '--etcd', etcdFlag, '--prefix', 'cli/coord/', '--subset-mode', 'coordinated'], /--subset-mode needs --subset-size/],
    [['status', '--etcd', etcdFlag, '--prefix', 'cli/coord/', '--subset-size', '2', '--clients-prefix', 'x/'], /--clients-prefix is used only with --subset-mode coordinated/],
    [[...base, '--client-id', 'a/b'], /--client-id must be 1 to 256 characters of A-Z a-z 0-9 \. _ : -, got "a\/b"/],
  ];
  for (const [argv, message] of cases) {
    const { code, err } = await run(argv);
    t.equal(code, 2, `${argv.slice(3).join(' ')} exits 2`);
    t.match(err, message, argv.slice(3).join(' '));
  }
  t.same(await clientKeys('anchorpool.clients/'), before, 'nothing registered by a refused command either');
});

t.test('status --json lists valid, Go-format and invalid keys; exit 1 until the invalid key is fixed', async (t) => {
  const first = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/echo/', '--json']);
  t.equal(first.code, 1, 'exit 1 with an invalid key');
  const report = JSON.parse(first.out) as { endpoints: { key: string; anchors: number; format: string }[]; invalid: { key: string; reason: string }[]; revision: number };
  t.same(
    report.endpoints.map((e) => [e.key, e.anchors, e.format]),
    [
      ['cli/echo/go', 3, 'go'],
      ['cli/echo/native', 2, 'json'],
    ],
  );
  t.match(report.invalid, [{ key: 'cli/echo/bad', reason: /addr: missing port/ }]);
  t.ok(report.revision > 0);

  await etcdctl(cluster, 'put', 'cli/echo/bad', `${backend.address}#1`);
  const fixed = await run(['status', '--prefix', 'cli/echo/', '--json'], { ETCDCTL_ENDPOINTS: etcdFlag });
  t.equal(fixed.code, 0, 'exit 0 once fixed (and ETCDCTL_ENDPOINTS gave the hosts)');
  t.equal((JSON.parse(fixed.out) as { invalid: unknown[] }).invalid.length, 0);
  await etcdctl(cluster, 'put', 'cli/echo/bad', '{"addr":"10.0.0.7"}');
});

t.test('status prints a table: keys, addresses, anchors, format, and the invalid key with its reason', async (t) => {
  const { code, out } = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/echo/']);
  t.equal(code, 1);
  t.match(out, /revision \d+ +\(connected\)/);
  t.match(out, new RegExp(`cli/echo/native\\s+${backend.address.replace(/\./g, '\\.')}\\s+2\\s+json`));
  t.match(out, /INVALID cli\/echo\/bad: addr: missing port/);
});

t.test('status --connect dials every anchor: READY counts, and an unreachable backend means exit 1', async (t) => {
  await etcdctl(cluster, 'put', 'cli/dial/up', `${backend.address}#2`);
  const ok = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/dial/', '--connect', '--json', '--timeout', '5000']);
  t.equal(ok.code, 0);
  t.match(JSON.parse(ok.out), { endpoints: [{ key: 'cli/dial/up', states: { READY: 2 } }], unreachable: [] });
  const deadPort = await freePort();
  await etcdctl(cluster, 'put', 'cli/dial/down', `127.0.0.1:${deadPort}#1`);
  const bad = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/dial/', '--connect', '--timeout', '2000']);
  t.equal(bad.code, 1, 'exit 1 with an unreachable backend');
  t.match(bad.out, /UNREACHABLE cli\/dial\/down/);
  t.match(bad.out, /READY\s+CONNECTING\s+FAILED\s+DRAINING/);
});

t.test('status shows the anchor range of a key that may grow: N-M in the table, maxAnchors in --json', async (t) => {
  await etcdctl(cluster, 'put', 'cli/grow/text', `${backend.address}#1-4`);
  await etcdctl(cluster, 'put', 'cli/grow/json', JSON.stringify({ addr: backend.address, anchors: 2, maxAnchors: 3 }));
  await etcdctl(cluster, 'put', 'cli/grow/fixed', `${backend.address}#2`);
  const json = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/grow/', '--json']);
  t.equal(json.code, 0, json.err);
  const endpoints = (JSON.parse(json.out) as { endpoints: Record<string, unknown>[] }).endpoints;
  t.same(
    endpoints.map((e) => [e['key'], e['anchors'], e['maxAnchors']]),
    [
      ['cli/grow/fixed', 2, undefined],
      ['cli/grow/json', 2, 3],
      ['cli/grow/text', 1, 4],
    ],
  );
  t.notOk('maxAnchors' in endpoints[0]!, 'a key without a range carries no maxAnchors');
  t.notOk('extra' in endpoints[1]!, 'without --connect, no count of extra anchors');

  const table = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/grow/']);
  t.equal(table.code, 0);
  const addr = backend.address.replace(/\./g, '\\.');
  t.match(table.out, new RegExp(`^cli/grow/fixed\\s+${addr}\\s+2\\s+text$`, 'm'), 'a fixed key: N');
  t.match(table.out, new RegExp(`^cli/grow/json\\s+${addr}\\s+2-3\\s+json$`, 'm'), 'JSON maxAnchors: N-M');
  t.match(table.out, new RegExp(`^cli/grow/text\\s+${addr}\\s+1-4\\s+text$`, 'm'), 'text addr#N-M: N-M');
  t.notMatch(table.out, /EXTRA/, 'no EXTRA column without --connect');
});

t.test('status shows a ZONE column when a key names its zone, "-" for the others; zone in --json', async (t) => {
  await etcdctl(cluster, 'put', 'cli/zone/text', `${backend.address}#2@eu-west-1a`);
  await etcdctl(cluster, 'put', 'cli/zone/json', JSON.stringify({ addr: backend.address, anchors: 1, zone: 'eu-west-1b' }));
  await etcdctl(cluster, 'put', 'cli/zone/go', JSON.stringify({ Op: 0, Addr: backend.address, Metadata: { anchors: 1, zone: 'eu-west-1c' } }));
  await etcdctl(cluster, 'put', 'cli/zone/none', `${backend.address}#1`);
  const json = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/zone/', '--json']);
  t.equal(json.code, 0, json.err);
  const endpoints = (JSON.parse(json.out) as { endpoints: Record<string, unknown>[] }).endpoints;
  t.same(
    endpoints.map((e) => [e['key'], e['zone']]),
    [
      ['cli/zone/go', 'eu-west-1c'],
      ['cli/zone/json', 'eu-west-1b'],
      ['cli/zone/none', undefined],
      ['cli/zone/text', 'eu-west-1a'],
    ],
  );
  t.notOk('zone' in endpoints[2]!, 'a key without a zone carries no zone field');

  const table = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/zone/']);
  t.equal(table.code, 0);
  const addr = backend.address.replace(/\./g, '\\.');
  t.match(table.out, /^KEY\s+ADDRESS\s+ANCHORS\s+FORMAT\s+ZONE$/m, 'a ZONE column after FORMAT');
  t.match(table.out, new RegExp(`^cli/zone/text\\s+${addr}\\s+2\\s+text\\s+eu-west-1a$`, 'm'));
  t.match(table.out, new RegExp(`^cli/zone/json\\s+${addr}\\s+1\\s+json\\s+eu-west-1b$`, 'm'));
  t.match(table.out, new RegExp(`^cli/zone/go\\s+${addr}\\s+1\\s+go\\s+eu-west-1c$`, 'm'));
  t.match(table.out, new RegExp(`^cli/zone/none\\s+${addr}\\s+1\\s+text\\s+-$`, 'm'), 'a key without a zone: -');

  const connected = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/zone/', '--connect', '--timeout', '5000']);
  t.equal(connected.code, 0, connected.err);
  t.match(connected.out, /^KEY\s+ADDRESS\s+ANCHORS\s+FORMAT\s+ZONE\s+READY\s+CONNECTING\s+FAILED\s+DRAINING$/m, 'with --connect the states follow the zone');
  t.match(connected.out, /^cli\/zone\/text\s+\S+\s+2\s+text\s+eu-west-1a\s+2\s+0\s+0\s+0$/m);
  t.match(connected.out, /^cli\/zone\/none\s+\S+\s+1\s+text\s+-\s+1\s+0\s+0\s+0$/m);

  const plain = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/grow/']);
  t.notMatch(plain.out, /ZONE/, 'no key with a zone: no ZONE column, the table as before');
  const help = await run(['status', '--help']);
  t.match(help.out, /its zone \(a ZONE\s+column when any key names one, '-' for the others\)/);
});

t.test('status --connect dials N anchors per key and counts the extra ones: 0, since status makes no calls', async (t) => {
  const json = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/grow/', '--connect', '--json', '--timeout', '5000']);
  t.equal(json.code, 0, json.err);
  t.match(JSON.parse(json.out), {
    endpoints: [
      { key: 'cli/grow/fixed', anchors: 2, states: { READY: 2, DRAINING: 0 }, extra: 0 },
      { key: 'cli/grow/json', anchors: 2, maxAnchors: 3, states: { READY: 2, DRAINING: 0 }, extra: 0 },
      { key: 'cli/grow/text', anchors: 1, maxAnchors: 4, states: { READY: 1, DRAINING: 0 }, extra: 0 },
    ],
    unreachable: [],
  });
  const table = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/grow/', '--connect', '--timeout', '5000']);
  t.equal(table.code, 0);
  t.match(table.out, /^KEY\s+ADDRESS\s+ANCHORS\s+FORMAT\s+READY\s+CONNECTING\s+FAILED\s+DRAINING\s+EXTRA$/m, 'an EXTRA column, since a key has a range');
  t.match(table.out, /^cli\/grow\/text\s+\S+\s+1-4\s+text\s+1\s+0\s+0\s+0\s+0$/m, 'the growable key: 1 READY, 0 extra');
  t.match(table.out, /^cli\/grow\/fixed\s+\S+\s+2\s+text\s+2\s+0\s+0\s+0\s+-$/m, 'a fixed key cannot have extra anchors: -');
  const help = await run(['status', '--help']);
  t.match(help.out, /how many are extra \(above N\): normally 0, since status makes\s+no calls/, '--help says why it is normally 0');
  // A key without a range shows no EXTRA column, as before.
  const plain = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/dial/', '--connect', '--timeout', '2000']);
  t.notMatch(plain.out, /EXTRA/);
});

t.test('the report counts the active extra anchors of a key, not draining ones, and the table shows them', async (t) => {
  // A pool that made calls may have opened extra anchors; status itself cannot, so its anchors are given here.
  const report: StatusReport = {
    target: 'etcd:///g/',
    revision: 7,
    etcd: { connected: true, disconnectedSince: null, lastError: null, hosts: null, lastResync: null },
    endpoints: [{ key: 'g/a', addr: '10.0.0.1:1', anchors: 1, maxAnchors: 4, format: 'text' }],
    invalid: [],
    unreachable: [],
    unhealthy: [],
  };
  const anchor = (index: number, extra: boolean, draining = false): AnchorInfo => ({
    key: 'g/a',
    anchor: index,
    address: '10.0.0.1:1',
    state: 'READY',
    health: 'UNCHECKED',
    ejected: false,
    eligible: !draining,
    extra,
    leased: 0,
    acquired: 0,
    draining,
    zone: undefined,
    latencyMillis: undefined,
  });
  const stats = { source: { revision: 7 } } as unknown as PoolStats;
  const withStates = withAnchorStates(report, [anchor(0, false), anchor(1, true), anchor(2, true), anchor(3, true, true)], stats);
  t.match(withStates.endpoints, [{ key: 'g/a', maxAnchors: 4, states: { READY: 3, DRAINING: 1 }, extra: 2 }]);
  t.match(renderReport(withStates).join('\n'), /^g\/a\s+10\.0\.0\.1:1\s+1-4\s+text\s+3\s+0\s+0\s+1\s+2$/m);
});

t.test('the report says when auto-sync moved the client to other members, and why the prefix was last listed again', async (t) => {
  const report = (hosts: string[] | null, lastResync: StatusReport['etcd']['lastResync']): StatusReport => ({
    target: 'etcd://10.0.0.1:2379,10.0.0.2:2379/g/',
    revision: 7,
    etcd: { connected: true, disconnectedSince: null, lastError: null, hosts, lastResync },
    endpoints: [],
    invalid: [],
    unreachable: [],
    unhealthy: [],
  });
  const quiet = renderReport(report(['10.0.0.1:2379', '10.0.0.2:2379'], null)).join('\n');
  t.notMatch(quiet, /members now|last resync/, 'nothing to say while the configured hosts hold and no resync happened');
  const moved = renderReport(report(['http://10.0.0.7:2379', 'http://10.0.0.8:2379'], { reason: 'members-changed', at: '2026-12-05T08:00:00.000Z' })).join('\n');
  t.match(moved, /^  etcd members now: http:\/\/10\.0\.0\.7:2379,http:\/\/10\.0\.0\.8:2379 \(auto-sync followed the member list\)$/m);
  t.match(moved, /^  last resync: members-changed at 2026-12-05T08:00:00\.000Z$/m);
  const cut = renderReport(report(['10.0.0.1:2379', '10.0.0.2:2379'], { reason: 'no-leader', at: '2026-12-05T08:01:00.000Z' })).join('\n');
  t.match(cut, /last resync: no-leader at /);
});

t.test('status --health: each anchor health-checked; a NOT_SERVING backend is UNHEALTHY and exit 1', async (t) => {
  const sick = await startBackend(t, { name: 'sick' });
  await etcdctl(cluster, 'put', 'cli/health/up', `${backend.address}#2`);
  await etcdctl(cluster, 'put', 'cli/health/sick', `${sick.address}#1`);
  await sick.setHealth('NOT_SERVING');
  const out = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/health/', '--health', '--json', '--timeout', '5000']);
  t.equal(out.code, 1, 'exit 1: a key has no healthy anchor');
  t.match(JSON.parse(out.out), {
    endpoints: [
      { key: 'cli/health/sick', states: { READY: 1 }, health: { SERVING: 0, NOT_SERVING: 1 } },
      { key: 'cli/health/up', states: { READY: 2 }, health: { SERVING: 2, NOT_SERVING: 0 } },
    ],
    unreachable: [],
    unhealthy: ['cli/health/sick'],
  });
  await sick.setHealth('SERVING');
  const table = await run(['status', '--etcd', etcdFlag, '--prefix', 'cli/health/', '--health', '--timeout', '5000']);
  t.equal(table.code, 0, 'exit 0 once it is SERVING again');
  t.match(table.out, /READY\s+CONNECTING\s+FAILED\s+DRAINING\s+SERVING\s+NOT_SERVING\s+UNKNOWN\s+NO_HEALTH_SVC/);
  t.match(table.out, /0 unhealthy/);
});

t.test('watch redraws as etcd changes, and stops on interrupt', async (t) => {
  const out: string[] = [];
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const running = main(['watch', '--etcd', etcdFlag, '--prefix', 'cli/watch/'], io({}, stopped, out));
  await waitFor(() => out.some((l) => l.includes('0 endpoint(s)')), { what: 'the first view' });
  await etcdctl(cluster, 'put', 'cli/watch/a', `${backend.address}#2`);
  await waitFor(() => out.some((l) => /cli\/watch\/a\s+\S+\s+2\s+text\s+2\s/.test(l)), { what: 'a view with 2 READY anchors' });
  stop();
  t.equal(await running, 0);
});

t.test('exit 1 with a clear message when etcd is unreachable', async (t) => {
  const port = await freePort();
  const { code, err } = await run(['status', '--etcd', `127.0.0.1:${port}`, '--prefix', 'x/', '--timeout', '500']);
  t.equal(code, 1);
  t.match(err, new RegExp(`no snapshot of prefix "x/" from etcd at 127\\.0\\.0\\.1:${port} within 500 ms`));
});

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  const cases: [string[], RegExp][] = [
    [['status', '--bogus'], /Unknown option '--bogus'/],
    [['status'], /--prefix \(or --target\) is required/],
    [['status', '--prefix', 'a/', '--target', 'etcd:///a/'], /not both/],
    [['status', '--prefix', 'a/', '--timeout', 'soon'], /--timeout must be a positive integer/],
    [['status', '--prefix', 'a/', '--metrics-port', 'http'], /--metrics-port must be a port number/],
    [['status', '--prefix', 'a/', '--user', 'root'], /--password-file FILE or ANCHORPOOL_ETCD_PASSWORD/],
    [['status', '--prefix', 'a/', '--cert', 'c.pem'], /--cert and --key need --cacert/],
    [['status', '--prefix', 'a/', '--etcd', 'nope'], /etcd\.hosts\.0: missing port/],
    [['status', '--target', 'dns:///x'], /unknown scheme "dns"/],
    [['watch', '--json', '--frob'], /Unknown option '--frob'/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [argv, message] of cases) {
    const { code, err } = await run(argv);
    t.equal(code, 2, `${argv.join(' ')} exits 2`);
    t.match(err, message, argv.join(' '));
  }
});

t.test('no password or key material appears in output, errors or logs', async (t) => {
  // An etcd of its own with auth enabled: a root user and a password.
  const secured = await startEtcd(t);
  const password = 'Pa55-w0rd-never-shown';
  await etcdctl(secured, 'user', 'add', `root:${password}`);
  await etcdctl(secured, 'auth', 'enable');
  await etcdctl(secured, 'put', 'sec/a', `${backend.address}#1`, '--user', `root:${password}`);
  const dir = mkdtempSync(join(tmpdir(), 'anchorpool-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, `${password}\n`);
  const flags = ['--etcd', secured.hosts.join(','), '--prefix', 'sec/', '--verbose', '--json'];

  const good = await run(['status', ...flags, '--user', 'root', '--password-file', passwordFile, '--connect']);
  t.equal(good.code, 0, `the right password works (${good.err.slice(0, 200)})`);
  t.match(JSON.parse(good.out), { endpoints: [{ key: 'sec/a' }] });

  writeFileSync(passwordFile, 'wrong-Secret-Value\n');
  const startedAt = Date.now();
  const bad = await run(['status', ...flags, '--user', 'root', '--password-file', passwordFile]);
  t.equal(bad.code, 1);
  t.match(bad.err, /refused access/, 'a wrong password is a clear auth error');
  t.ok(Date.now() - startedAt < 4000, 'reported at once, not after the timeout');

  const fromEnv = await run(['status', ...flags, '--user', 'root'], { ANCHORPOOL_ETCD_PASSWORD: password });
  t.equal(fromEnv.code, 0, 'the password can come from ANCHORPOOL_ETCD_PASSWORD');

  // TLS files with recognisable (fake) key material: the connection fails, the material stays private.
  const marker = 'KEYMATERIAL-7f3a9c';
  for (const name of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, name), `-----BEGIN PRIVATE KEY-----\n${marker}\n-----END PRIVATE KEY-----\n`);
  const tls = await run(['status', ...flags, '--timeout', '1000', '--cacert', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem')]);
  t.equal(tls.code, 1);

  for (const [name, result] of Object.entries({ good, bad, fromEnv, tls })) {
    const everything = `${result.out}\n${result.err}`;
    t.notMatch(everything, password, `${name}: no password`);
    t.notMatch(everything, 'wrong-Secret-Value', `${name}: no wrong password either`);
    t.notMatch(everything, marker, `${name}: no key material`);
  }
});

t.test('the installed bin runs the same commands', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/anchorpool.js', import.meta.url));
  await etcdctl(cluster, 'put', 'cli/bin/a', `${backend.address}#2`);
  const result = spawnSync(process.execPath, [bin, 'status', '--etcd', etcdFlag, '--prefix', 'cli/bin'], { encoding: 'utf8' });
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /cli\/bin\/a\s+\S+\s+2/);
  const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: anchorpool <command>/);
});
