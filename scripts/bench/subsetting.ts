// Subsetting (issue 23): C simulated clients on one prefix of K backend keys, N = 2
// anchors per key, each client keeping anchors to S = 10 keys (or to every key, without
// subsetting). Per contender (a subset mode, or none):
//   - connections per backend, counted on the server side, once every client's subset is
//     connected: min / median / max and their distance from the mean;
//   - calls per backend over a steady load (every client makes one round of Echo calls
//     through pool.client(), one per anchor it holds, paced over 10 s from a random
//     phase): min / mean / max;
//   - connections moved when 10% more keys are registered (K → K + 10%), then 10% of the
//     original keys deleted, then 10% more clients join (C → C + 10%): the connections
//     the backends closed plus those they opened, as a % of the connections held before;
//   - failed calls: the load runs through every change, each change is counted apart;
//   - etcd's load (its /metrics and CPU time): the coordinated mode registers every client
//     on its own lease, kept alive by etcd3 on a stream of its own, and watches the clients.
// After each change the bench waits until the fleet has settled: every pool holds exactly
// its subset (no key leaving or failed, none draining), every anchor is READY, and every
// backend holds exactly the connections the pools say they keep to it, twice in a row.
//
// Each client's subset is checked against the contender's algorithm, computed here: for
// the coordinated mode from the client ids etcd lists under its clients prefix (what every
// pool computes the fleet's assignment from), not from the bench's own list of ids.
//
// The backends are cheap grpc-js Echo servers, many per process (subsetting-backends.ts),
// that count connections and calls on the server side. The clients are pools, many per
// process (subsetting-clients.ts), each with its own client id, sharing their process's
// etcd client. A process may hold 20,000 file descriptors here (ulimit -n, hard), so
// 1,000 clients × 10 keys × 2 anchors, plus 10% joining, do not fit in one process: the
// clients are spread over as many processes as needed for at most SHARD_CONNECTIONS each.
//
// Without subsetting every client connects to every key: 1,000 × 100 × 2 = 200,000
// connections do not fit on this machine. That contender runs with as many clients as
// NONE_CONNECTIONS holds (at K + 10% keys) and the figures for C clients follow by
// arithmetic (each backend holds exactly C × N connections without subsetting).
//
//   npm run bench -- --only subsetting [--quick | --tiny]
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import type { SubsetOptions } from '../../lib/index.js';
import { assignSubsets, DEFAULT_CLIENT_TTL_SECONDS, rendezvousOrder } from '../../lib/internal.js';
import { ensureEtcdInstalled, startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { killOnExit } from '../../testkit/echo/backend.js';
import { putAll } from './etcd-writes.js';
import { quantile, summarize, type Bar, type BenchContext, type Scenario, type ScenarioResult, type ScenarioRow } from './scenario.js';
import type { BackendCounts } from './subsetting-backends.js';
import type { CallCounts, Census, PoolSubset } from './subsetting-clients.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BACKENDS_CHILD = path.join(HERE, 'subsetting-backends.js');
const CLIENTS_CHILD = path.join(HERE, 'subsetting-clients.js');
const PREFIX = 'bench/subsetting/';
/** Where the coordinated contender's pools register: its own, so no other run's clients count among its clients. */
const COORDINATED_CLIENTS = 'anchorpool.clients/bench/subsetting/coordinated/';
/** Anchors per key (N) and keys per subset (S), as the issue sets them. */
const N = 2;
const S = 10;
/** Keys added and removed, and clients joining, as a fraction of K and of C. */
const CHANGE = 0.1;
/** Connections one client process holds at most (its file descriptors are 20,000). */
const SHARD_CONNECTIONS = 12_000;
/** The file descriptors a process may hold here (ulimit -n, hard). */
const FD_LIMIT = 20_000;
/** The connections the contender without subsetting may open in all: as many as 1,000 subsetting clients hold. */
const NONE_CONNECTIONS = 20_000;
const BACKEND_PROCESSES = 4;
const CALL_DEADLINE_MILLIS = 10_000;
const POLL_MILLIS = 500;
const SETTLE_TIMEOUT_MILLIS = 180_000;
/** /proc/<pid>/stat counts CPU time in clock ticks of 1/100 s on Linux. */
const CLK_TCK = 100;
/**
 * The issue's "moves ≤ 20% of connections": a connection closed on one backend and opened on
 * another is one connection moved, so the bar reads the connections closed (and replaced)
 * against those held. Opened + closed, the churn, is printed too: at best twice that.
 */
const BAR_MOVED_PERCENT = 20;
const movedOncePercent = (c: { closed: number; before: number }): number => (100 * c.closed) / c.before;
const BAR_BALANCE_PERCENT = 10;

interface Profile {
  readonly clients: number;
  readonly keys: number;
  /**
   * The time over which each client makes one round of calls, one per anchor it holds,
   * for the calls per backend; the load through the changes runs at the same rate. A
   * client's pick goes round its anchors in turn, with every client's turn on the same
   * key order, so calls counted over a fixed time (rounds cut short where the timers ran
   * late) measure where the rounds were, not how the load is spread: a whole round does not.
   */
  readonly steadyMillis: number;
}

/** One way of choosing a client's keys: a subset mode, or none. */
interface Contender {
  readonly name: string;
  /** The subset option each client gets (with its own clientId), or null: every key. */
  readonly subset: SubsetOptions | null;
  /** The clients it runs with, given the profile's C. */
  clients(profile: Profile): number;
  /** Held to the issue's balance bars: every backend within ±10% of the mean connections and calls. */
  readonly balanced: boolean;
  /** Held to "adding or removing 10% of backends moves ≤ 20% of connections". */
  readonly moveBar: boolean;
  /**
   * The keys each client should keep, given every client's id and the keys: the moves the
   * algorithm itself implies are computed from it, and the pools' subsets checked against
   * it. Absent: neither.
   */
  readonly subsets?: (clientIds: readonly string[], keys: readonly string[]) => ReadonlyMap<string, readonly string[]>;
  /**
   * Where its pools register (coordinated): the client ids given to `subsets` are then
   * those etcd lists there, as the pools see them. Absent: the ids the bench opened.
   */
  readonly clientsPrefix?: string;
}

const added = (profile: Profile): number => Math.max(1, Math.round(profile.keys * CHANGE));
const joining = (clients: number): number => Math.max(1, Math.round(clients * CHANGE));

const CONTENDERS: readonly Contender[] = [
  { name: 'rendezvous', subset: { size: S, mode: 'rendezvous' }, clients: (p) => p.clients, balanced: false, moveBar: true, subsets: (ids, keys) => new Map(ids.map((id) => [id, rendezvousOrder(id, keys).slice(0, S)])) },
  {
    name: 'coordinated',
    subset: { size: S, mode: 'coordinated', clientsPrefix: COORDINATED_CLIENTS },
    clientsPrefix: COORDINATED_CLIENTS,
    clients: (p) => p.clients,
    balanced: true,
    moveBar: true,
    // The assignment every pool computes from the registered ids and the keys.
    subsets: (ids, keys) => assignSubsets(ids, keys, S),
  },
  {
    name: 'none',
    subset: null,
    // As many as NONE_CONNECTIONS holds with every key at K + 10% keys (C + 10% clients on K keys hold about as many).
    clients: (p) => Math.min(p.clients, Math.floor(NONE_CONNECTIONS / ((p.keys + added(p)) * N))),
    balanced: false,
    moveBar: false,
    subsets: (ids, keys) => new Map(ids.map((id) => [id, keys])),
  },
];

const keyOf = (i: number): string => `${PREFIX}b${String(i).padStart(4, '0')}`;
const clientIds = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `client-${from + i}`);

// ── child processes ───────────────────────────────────────────────────────────

/** A child process answering `{ type, id, … }` requests with a message of the same type and id. */
class Child {
  readonly #child: ChildProcess;
  readonly #name: string;
  #nextId = 0;
  readonly started: Promise<Record<string, unknown>>;

  constructor(script: string, args: string[], name: string, startedType: string) {
    this.#name = name;
    this.#child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    killOnExit(this.#child);
    this.started = new Promise((resolve, reject) => {
      this.#child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it started`)));
      this.#child.on('message', (m: { type: string }) => {
        if (m.type === startedType) resolve(m as Record<string, unknown>);
      });
    });
  }

  ask<T>(type: string, fields: Record<string, unknown> = {}, timeoutMillis = SETTLE_TIMEOUT_MILLIS): Promise<T> {
    const id = ++this.#nextId;
    const child = this.#child;
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      const onMessage = (m: { type: string; id?: number }) => {
        if (m.type !== type || m.id !== id) return;
        done();
        resolve(m as T);
      };
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`${this.#name} exited (${code}) before answering ${type}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.#name} did not answer ${type} within ${timeoutMillis} ms`));
      }, timeoutMillis);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ ...fields, type, id });
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

/** The K + 10% backends, in BACKEND_PROCESSES processes; backend i is key i's. */
class Backends {
  readonly #hosts: Child[] = [];
  addresses: string[] = [];

  async start(count: number): Promise<void> {
    const per = Math.ceil(count / BACKEND_PROCESSES);
    for (let first = 0; first < count; first += per) this.#hosts.push(new Child(BACKENDS_CHILD, [String(first), String(Math.min(per, count - first))], `backends ${first}+`, 'listening'));
    const started = await Promise.all(this.#hosts.map((h) => h.started));
    this.addresses = started.flatMap((m) => (m['ports'] as number[]).map((port) => `127.0.0.1:${port}`));
  }

  async counts(): Promise<{ backends: BackendCounts[]; rss: number }> {
    const replies = await Promise.all(this.#hosts.map((h) => h.ask<{ backends: BackendCounts[]; rss: number }>('stats')));
    return { backends: replies.flatMap((r) => r.backends), rss: replies.reduce((sum, r) => sum + r.rss, 0) };
  }

  async resetCalls(): Promise<void> {
    await Promise.all(this.#hosts.map((h) => h.ask('reset-calls')));
  }

  async stop(): Promise<void> {
    await Promise.all(this.#hosts.map((h) => h.stop()));
  }
}

/** The clients, in as many processes as their connections need; client i lives in process i mod P. */
class Clients {
  readonly #shards: Child[];
  #count = 0;

  constructor(shards: number, hosts: readonly string[]) {
    this.#shards = Array.from({ length: shards }, (_, i) => new Child(CLIENTS_CHILD, [hosts.join(','), PREFIX], `clients ${i}`, 'started'));
  }

  get shards(): number {
    return this.#shards.length;
  }

  async open(ids: readonly string[], subset: SubsetOptions | null): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.started));
    const per: string[][] = this.#shards.map(() => []);
    for (const id of ids) per[this.#count++ % this.#shards.length]!.push(id);
    await Promise.all(this.#shards.map((s, i) => s.ask('open', { clientIds: per[i], subset })));
  }

  async census(): Promise<Census> {
    const all = (await Promise.all(this.#shards.map((s) => s.ask<{ census: Census }>('census')))).map((r) => r.census);
    const keys: Record<string, number> = {};
    for (const c of all) for (const [key, n] of Object.entries(c.keys)) keys[key] = (keys[key] ?? 0) + n;
    const views: Record<string, number> = {};
    for (const c of all) for (const [clients, n] of Object.entries(c.views)) views[clients] = (views[clients] ?? 0) + n;
    const offered: Record<string, number> = {};
    for (const c of all) for (const [keys, n] of Object.entries(c.offered)) offered[keys] = (offered[keys] ?? 0) + n;
    const logged: Census['logged'] = {};
    for (const c of all) for (const [message, { count, example }] of Object.entries(c.logged)) logged[message] = { count: (logged[message]?.count ?? 0) + count, example: logged[message]?.example ?? example };
    const sum = (f: (c: Census) => number) => all.reduce((s, c) => s + f(c), 0);
    return { pools: sum((c) => c.pools), keys, leaving: sum((c) => c.leaving), failed: sum((c) => c.failed), offSize: sum((c) => c.offSize), ready: sum((c) => c.ready), draining: sum((c) => c.draining), errors: sum((c) => c.errors), frozen: sum((c) => c.frozen), connectTimeouts: sum((c) => c.connectTimeouts), offered, unplaced: sum((c) => c.unplaced), views, logged, peakDescriptors: Math.max(...all.map((c) => c.peakDescriptors)), rss: sum((c) => c.rss) };
  }

  /** Every pool's chosen keys and place, by client id. */
  async subsets(): Promise<Map<string, PoolSubset>> {
    const all = await Promise.all(this.#shards.map((s) => s.ask<{ subsets: Record<string, PoolSubset> }>('subsets')));
    return new Map(all.flatMap((r) => Object.entries(r.subsets)));
  }

  /** Every client makes `calls` calls paced over `millis`; resolves when all have finished. */
  async round(calls: number, millis: number): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.ask('round', { calls, millis, deadlineMillis: CALL_DEADLINE_MILLIS }, SETTLE_TIMEOUT_MILLIS + millis)));
  }

  async load(callsPerSecond: number): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.ask('load', { callsPerSecond, deadlineMillis: CALL_DEADLINE_MILLIS })));
  }

  async calls(type: 'calls' | 'close' = 'calls'): Promise<CallCounts> {
    const all = (await Promise.all(this.#shards.map((s) => s.ask<{ calls: CallCounts }>(type)))).map((r) => r.calls);
    const errors: Record<string, number> = {};
    for (const c of all) for (const [message, n] of Object.entries(c.errors)) errors[message] = (errors[message] ?? 0) + n;
    return { ok: all.reduce((s, c) => s + c.ok, 0), failed: all.reduce((s, c) => s + c.failed, 0), errors };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.stop()));
  }
}

// ── one contender ─────────────────────────────────────────────────────────────

interface Settled {
  readonly settled: boolean;
  /** Why not, when it did not settle in time. */
  readonly detail: string;
  readonly millis: number;
  readonly census: Census;
  readonly counts: BackendCounts[];
  readonly backendRss: number;
}

interface Change {
  readonly name: string;
  readonly opened: number;
  readonly closed: number;
  readonly before: number;
  readonly after: number;
  readonly churnPercent: number;
  /**
   * Connections opened + closed beyond what the pools' own subsets account for (N per key a
   * client dropped or took, between the settled states): a key taken and dropped again
   * within the change, a connection lost and made again. None in a clean change. Counted
   * per client, not per backend: in the coordinated mode one backend leaves some clients'
   * subsets as it enters others' in the same change.
   */
  readonly churn: number;
  /** The connections opened + closed that the algorithm implies (from the contender's subsets), when it can be computed. */
  readonly ideal: number | undefined;
  /** The clients there before and after whose subset the algorithm changes, when it can be computed: against `moved.changed`. */
  readonly idealChanged: number | undefined;
  readonly failed: number;
  readonly settle: Settled;
  /** What moved, client by client, from the pools' own subsets before and after. */
  readonly moved: Moved;
  readonly check: SubsetCheck;
  /** etcd's CPU time over the change. */
  readonly etcdCpuMillis: number;
}

/** The clients whose subsets moved in a change, from the pools' own reports before and after it. */
interface Moved {
  /** Clients there before and after, and those of them whose chosen keys changed. */
  readonly stayed: number;
  readonly changed: number;
  /** Keys those clients dropped + took (each N connections). */
  readonly keysSwapped: number;
  /** Of those, keys that came or went in the change (a key taken that came, a key dropped that went): each traded for another key, so 2 swaps apiece at least. */
  readonly changedKeys: number;
  /** Keys the clients that joined took. */
  readonly joinerKeys: number;
}

/** Once settled: pools whose chosen keys, or place among the clients, differ from the contender's algorithm for the ids and keys etcd holds. */
interface SubsetCheck {
  readonly clients: number;
  readonly offSubset: number;
  /** Coordinated pools that count other than etcd's ids, or report a rank other than their id's index among them sorted (informational: the subset comes from the whole list). */
  readonly offPlace: number;
  /** Ids etcd lists with no pool of this run, and pools etcd does not list. */
  readonly strangers: number;
}

/** etcd's counters at one moment (its /metrics, and its CPU time from /proc). */
interface EtcdSample {
  readonly at: number;
  readonly cpuMillis: number;
  readonly leasesRenewed: number;
  readonly leasesGranted: number;
  /** Leases etcd holds: granted less revoked (etcd counts a lease that expired as revoked too); a failed registration attempt leaves its lease until revoked or expired. */
  readonly leasesLive: number;
  readonly keepaliveStreams: number;
  readonly watchers: number;
  readonly watchStreams: number;
  readonly rss: number;
}

interface EtcdSite {
  readonly hosts: readonly string[];
  readonly clientUrl: string;
  readonly pid: number;
}

/** etcd's load while a contender's fleet stands still (the round) and while it starts. */
interface EtcdLoad {
  readonly steady: { readonly seconds: number; readonly cpuMillisPerSecond: number; readonly renewalsPerSecond: number; readonly leasesLive: number; readonly keepaliveStreams: number; readonly watchers: number; readonly watchStreams: number; readonly rss: number };
  /** From the pools' creation until they settled. */
  readonly start: { readonly cpuMillis: number; readonly leasesGranted: number };
}

interface ContenderRun {
  readonly contender: Contender;
  readonly clients: number;
  readonly shards: number;
  readonly initial: Settled;
  /** Open connections of each registered backend once settled. */
  readonly connections: number[];
  /** Echo calls each registered backend served in the round. */
  readonly calls: number[];
  readonly steadyCalls: CallCounts;
  /** The whole fleet's calls per second over the round (its calls over the time it took). */
  readonly fleetCallsPerSecond: number;
  readonly changes: Change[];
  readonly total: CallCounts;
  /** Keys whose count of pools keeping them differs from the contender's subsets, once settled at the start; undefined when not computed. */
  readonly offIdeal: number | undefined;
  readonly check: SubsetCheck;
  /** Connections the backends opened and closed from the pools' creation until they settled at the start. */
  readonly startOpened: number;
  readonly startClosed: number;
  readonly etcd: EtcdLoad;
  /** Keys left under the contender's clients prefix once its pools were closed (each close deletes its own). */
  readonly leftRegistered: number | undefined;
}

/** User + system CPU time of a process so far, in ms (Linux). */
function cpuMillis(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

async function sampleEtcd(site: EtcdSite): Promise<EtcdSample> {
  const lines = (await (await fetch(`${site.clientUrl}/metrics`)).text()).split('\n');
  // The sum of a metric's series whose labels hold every part given; NaN when etcd has none, so a figure built on it shows as such.
  const metric = (name: string, ...labels: string[]): number => {
    const series = lines.filter((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && labels.every((part) => l.includes(part)));
    return series.length === 0 ? Number.NaN : series.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  };
  const keepalive = 'grpc_method="LeaseKeepAlive"';
  return {
    at: performance.now(),
    cpuMillis: cpuMillis(site.pid),
    leasesRenewed: metric('etcd_debugging_lease_renewed_total'),
    leasesGranted: metric('etcd_debugging_lease_granted_total'),
    leasesLive: metric('etcd_debugging_lease_granted_total') - metric('etcd_debugging_lease_revoked_total'),
    keepaliveStreams: metric('grpc_server_started_total', keepalive) - metric('grpc_server_handled_total', keepalive),
    watchers: metric('etcd_debugging_mvcc_watcher_total'),
    watchStreams: metric('etcd_debugging_mvcc_watch_stream_total'),
    rss: metric('process_resident_memory_bytes'),
  };
}

/**
 * Polls until the fleet holds exactly what its pools say, twice in a row with no
 * connection opened or closed in between: every pool offered every registered key;
 * every registered key's backend holds the pools keeping it × N connections, every
 * other backend none; no key leaving, failed or draining; every anchor READY; every
 * coordinated pool registered and placed among all of them.
 */
async function settle(clients: Clients, backends: Backends, registered: ReadonlySet<number>, subset: boolean): Promise<Settled> {
  const started = performance.now();
  let previous: { opened: number; closed: number } | undefined;
  let detail = '';
  for (;;) {
    const census = await clients.census();
    const { backends: counts, rss } = await backends.counts();
    const opened = counts.reduce((s, c) => s + c.opened, 0);
    const closed = counts.reduce((s, c) => s + c.closed, 0);
    const wrong = counts.flatMap((c, i) => {
      const want = registered.has(i) ? (census.keys[keyOf(i)] ?? 0) * N : 0;
      return c.open === want ? [] : [`${keyOf(i).slice(PREFIX.length)} holds ${c.open}, the pools keep ${want}`];
    });
    const kept = Object.values(census.keys).reduce((s, n) => s + n, 0) * N;
    const problems = [
      ...(wrong.length > 0 ? [`${wrong.length} backends off (${wrong.slice(0, 3).join('; ')})`] : []),
      // Every pool offered every registered key: a pool whose discovery has not delivered holds nothing, which the counts above would not show.
      ...(Object.keys(census.offered).some((keys) => Number(keys) !== registered.size) ? [`pools offered ${Object.entries(census.offered).map(([keys, n]) => `${n} × ${keys}`).join(', ')} keys of ${registered.size}`] : []),
      ...(census.leaving > 0 ? [`${census.leaving} keys leaving`] : []),
      ...(census.failed > 0 ? [`${census.failed} keys failed`] : []),
      ...(subset && census.offSize > 0 ? [`${census.offSize} pools without ${S} chosen keys`] : []),
      ...(census.draining > 0 ? [`${census.draining} anchors draining`] : []),
      ...(census.ready !== kept ? [`${census.ready} of ${kept} anchors READY`] : []),
      // Coordinated: every pool registered and placed among as many clients as there are pools (a view lags its burst by 500 ms).
      ...(census.unplaced > 0 ? [`${census.unplaced} pools not placed or not registered`] : []),
      ...(Object.keys(census.views).some((clients) => Number(clients) !== census.pools) ? [`pools see ${Object.entries(census.views).map(([clients, n]) => `${n} × ${clients}`).join(', ')} clients of ${census.pools}`] : []),
    ];
    const steady = previous !== undefined && previous.opened === opened && previous.closed === closed;
    if (problems.length === 0 && steady) return { settled: true, detail: '', millis: performance.now() - started, census, counts, backendRss: rss };
    detail = problems.join(', ') || 'connections still opening or closing';
    if (performance.now() - started > SETTLE_TIMEOUT_MILLIS) return { settled: false, detail, millis: performance.now() - started, census, counts, backendRss: rss };
    previous = problems.length === 0 ? { opened, closed } : undefined;
    await sleep(POLL_MILLIS);
  }
}

/** Puts and deletes in one transaction: one revision, so every pool sees the change as one watch response. */
async function atomically(writer: Etcd3, puts: readonly (readonly [string, string])[], deletes: readonly string[]): Promise<void> {
  const ops = [...puts.map(([key, value]) => writer.put(key).value(value)), ...deletes.map((key) => writer.delete().key(key))];
  if (ops.length > 128) throw new Error(`subsetting: ${ops.length} operations in one transaction, etcd takes 128`);
  // `Version > -1` holds for any key, so the operations always run.
  const committed = await writer.if(puts[0]?.[0] ?? deletes[0]!, 'Version', '>', -1).then(...ops).commit();
  if (!committed.succeeded) throw new Error('subsetting: the transaction did not apply');
}

/**
 * The connections opened + closed if every client went from its ideal subset of `before` to
 * that of `after` (absent clients keep none), and the clients in both whose subset changed.
 */
function idealMoves(subsets: NonNullable<Contender['subsets']>, before: { ids: readonly string[]; keys: readonly string[] }, after: { ids: readonly string[]; keys: readonly string[] }): { connections: number; changed: number } {
  const [from, to] = [subsets(before.ids, before.keys), subsets(after.ids, after.keys)];
  let connections = 0;
  let changed = 0;
  for (const id of new Set([...before.ids, ...after.ids])) {
    const was = new Set(from.get(id) ?? []);
    const is = new Set(to.get(id) ?? []);
    const moved = [...was].filter((key) => !is.has(key)).length + [...is].filter((key) => !was.has(key)).length;
    connections += moved * N;
    if (moved > 0 && from.has(id) && to.has(id)) changed += 1;
  }
  return { connections, changed };
}

async function resetKeys(writer: Etcd3, addresses: readonly string[], keys: number): Promise<void> {
  await writer.delete().prefix(PREFIX).exec();
  await putAll(writer, Array.from({ length: keys }, (_, i) => [keyOf(i), JSON.stringify({ addr: addresses[i], anchors: N })] as const), 32);
}

/** The pools' warnings and errors so far, the most frequent kinds first: for the progress lines, so a run that dies still says what the pools saw. */
function loggedSoFar(census: Census): string {
  const kinds = Object.entries(census.logged).sort((x, y) => y[1].count - x[1].count);
  return kinds.length === 0 ? '' : `; pools logged ${kinds.slice(0, 3).map(([message, { count }]) => `${count} × "${message.slice(0, 80)}"`).join(', ')}${kinds.length > 3 ? ', …' : ''}`;
}

/** The pools' subsets against the contender's algorithm for `ids` (as etcd lists them, for the coordinated mode) and `keys`. */
function checkSubsets(subsets: NonNullable<Contender['subsets']>, coordinated: boolean, ids: readonly string[], keys: readonly string[], pools: ReadonlyMap<string, PoolSubset>): SubsetCheck {
  const want = subsets(ids, keys);
  // A coordinated pool reports its id's index among the ids sorted: it says the pool saw the same list, not where its keys are.
  const rank = new Map([...ids].sort().map((id, i) => [id, i]));
  let offSubset = 0;
  let offPlace = 0;
  let strangers = ids.filter((id) => !pools.has(id)).length;
  for (const [id, pool] of pools) {
    const expected = want.get(id);
    if (expected === undefined) {
      strangers += 1;
      continue;
    }
    const chosen = new Set(pool.keys);
    if (chosen.size !== expected.length || expected.some((key) => !chosen.has(key))) offSubset += 1;
    if (coordinated && (pool.clients !== ids.length || pool.rank !== rank.get(id))) offPlace += 1;
  }
  return { clients: pools.size, offSubset, offPlace, strangers };
}

/** What moved from one census of the pools' subsets to the next. */
function movedBetween(before: ReadonlyMap<string, PoolSubset>, after: ReadonlyMap<string, PoolSubset>, cameOrWent: ReadonlySet<string>): Moved {
  let stayed = 0;
  let changed = 0;
  let keysSwapped = 0;
  let changedKeys = 0;
  let joinerKeys = 0;
  for (const [id, now] of after) {
    const was = before.get(id);
    if (was === undefined) {
      joinerKeys += now.keys.length;
      continue;
    }
    stayed += 1;
    const [a, b] = [new Set(was.keys), new Set(now.keys)];
    const swapped = [...a].filter((key) => !b.has(key)).length + [...b].filter((key) => !a.has(key)).length;
    changedKeys += [...a, ...b].filter((key) => cameOrWent.has(key)).length;
    if (swapped > 0) changed += 1;
    keysSwapped += swapped;
  }
  return { stayed, changed, keysSwapped, changedKeys, joinerKeys };
}

async function runContender(context: BenchContext, contender: Contender, profile: Profile, etcd: EtcdSite, writer: Etcd3, backends: Backends): Promise<ContenderRun> {
  const C = contender.clients(profile);
  const K = profile.keys;
  const addedKeys = added(profile);
  const joiners = joining(C);
  const perClient = contender.subset === null ? K + addedKeys : S;
  const clientsPrefix = contender.clientsPrefix;
  // A coordinated pool's subset moves many times while the fleet registers (each listing
  // gives another assignment), and each move keeps the keys it leaves until their
  // replacements serve and drains the anchors it drops: they get twice the room. (At
  // C = 1,000 a process of 250 has still passed its 20,000 descriptors once in a start;
  // with twice as many processes the start, on 2 cores, did not settle at all.)
  const peak = Math.max(C * perClient, (C + joiners) * (contender.subset === null ? K : S)) * N * (clientsPrefix === undefined ? 1 : 2);
  const log = (line: string) => context.log(`subsetting: ${contender.name}: ${line}`);
  const registeredClients = async (): Promise<string[]> => (clientsPrefix === undefined ? [] : (await writer.getAll().prefix(clientsPrefix).keys()).map((key) => key.slice(clientsPrefix.length)));
  // Another run's clients in the prefix would count among this one's.
  if ((await registeredClients()).length > 0) throw new Error(`subsetting: ${contender.name}: clients already registered under ${clientsPrefix}`);
  await resetKeys(writer, backends.addresses, K);
  const registered = new Set(Array.from({ length: K }, (_, i) => i));
  const clients = new Clients(Math.max(1, Math.ceil(peak / SHARD_CONNECTIONS)), etcd.hosts);
  try {
    const subset = contender.subset !== null;
    const coordinated = clientsPrefix !== undefined;
    const subsets = contender.subsets;
    const keysNow = () => [...registered].sort((a, b) => a - b).map(keyOf);
    let ids = clientIds(0, C);
    // The ids the algorithm assigns from: for a coordinated contender those etcd lists, as its pools see them.
    const idsNow = async (): Promise<string[]> => (coordinated ? await registeredClients() : ids);
    const check = async (pools: ReadonlyMap<string, PoolSubset>): Promise<SubsetCheck> =>
      subsets === undefined ? { clients: pools.size, offSubset: 0, offPlace: 0, strangers: 0 } : checkSubsets(subsets, coordinated, await idsNow(), keysNow(), pools);

    const { backends: countsBeforeStart } = await backends.counts();
    const etcdBeforeStart = await sampleEtcd(etcd);
    await clients.open(clientIds(0, C), contender.subset);
    const initial = await settle(clients, backends, registered, subset);
    const etcdStarted = await sampleEtcd(etcd);
    const sum = (counts: readonly BackendCounts[], f: (c: BackendCounts) => number) => counts.reduce((s, c) => s + f(c), 0);
    const startOpened = sum(initial.counts, (c) => c.opened) - sum(countsBeforeStart, (c) => c.opened);
    const startClosed = sum(initial.counts, (c) => c.closed) - sum(countsBeforeStart, (c) => c.closed);
    log(`${C} clients in ${clients.shards} process(es): ${initial.settled ? 'settled' : `NOT settled (${initial.detail})`} in ${(initial.millis / 1000).toFixed(1)} s, ${initial.counts.reduce((s, c) => s + c.open, 0)} connections (${startOpened} opened, ${startClosed} closed on the way); etcd CPU ${(etcdStarted.cpuMillis - etcdBeforeStart.cpuMillis).toFixed(0)} ms${loggedSoFar(initial.census)}`);
    const connections = [...registered].map((i) => initial.counts[i]!.open);
    let pools = await clients.subsets();
    const initialCheck = await check(pools);
    if (subsets !== undefined) log(`subsets against the algorithm for ${coordinated ? "etcd's client list" : 'the client ids'}: ${initialCheck.offSubset} of ${initialCheck.clients} clients off${coordinated ? `, ${initialCheck.offPlace} seeing another client count or rank` : ''}, ${initialCheck.strangers} strangers`);
    let offIdeal: number | undefined;
    if (subsets !== undefined) {
      const want = new Map<string, number>();
      for (const keys of subsets(await idsNow(), keysNow()).values()) for (const key of keys) want.set(key, (want.get(key) ?? 0) + 1);
      offIdeal = keysNow().filter((key) => (want.get(key) ?? 0) !== (initial.census.keys[key] ?? 0)).length;
    }

    // Calls per backend: one round per client, one call per anchor it holds, paced over steadyMillis.
    const perClient = (contender.subset === null ? K : Math.min(S, K)) * N;
    await backends.resetCalls();
    // etcd over the round: the fleet stands still, so its load is the pools' keepalives and watches alone.
    const etcdBeforeRound = await sampleEtcd(etcd);
    const roundStarted = performance.now();
    await clients.round(perClient, profile.steadyMillis);
    const roundMillis = performance.now() - roundStarted;
    const etcdAfterRound = await sampleEtcd(etcd);
    const { backends: afterRound } = await backends.counts();
    const steadyCalls = await clients.calls();
    const calls = [...registered].map((i) => afterRound[i]!.calls);
    const seconds = (etcdAfterRound.at - etcdBeforeRound.at) / 1000;
    const etcdLoad: EtcdLoad = {
      steady: {
        seconds,
        cpuMillisPerSecond: (etcdAfterRound.cpuMillis - etcdBeforeRound.cpuMillis) / seconds,
        renewalsPerSecond: (etcdAfterRound.leasesRenewed - etcdBeforeRound.leasesRenewed) / seconds,
        leasesLive: etcdAfterRound.leasesLive,
        keepaliveStreams: etcdAfterRound.keepaliveStreams,
        watchers: etcdAfterRound.watchers,
        watchStreams: etcdAfterRound.watchStreams,
        rss: etcdAfterRound.rss,
      },
      start: { cpuMillis: etcdStarted.cpuMillis - etcdBeforeStart.cpuMillis, leasesGranted: etcdStarted.leasesGranted - etcdBeforeStart.leasesGranted },
    };
    log(`steady load: a round of ${perClient} calls per client in ${(roundMillis / 1000).toFixed(1)} s; ${steadyCalls.ok} calls ok, ${steadyCalls.failed} failed; etcd meanwhile ${etcdLoad.steady.cpuMillisPerSecond.toFixed(1)} ms CPU/s, ${etcdLoad.steady.renewalsPerSecond.toFixed(0)} lease renewals/s, ${etcdLoad.steady.keepaliveStreams} keepalive streams, ${etcdLoad.steady.watchers} watchers`);
    // Then the same rate, from now on, through every change below.
    const callsPerSecond = (perClient * 1000) / profile.steadyMillis;
    await clients.load(callsPerSecond);
    await sleep(1000 / callsPerSecond + 500); // every client has started calling

    const changes: Change[] = [];
    const change = async (name: string, apply: () => Promise<void>): Promise<void> => {
      const { backends: countsBefore } = await backends.counts();
      const callsBefore = await clients.calls();
      const etcdBefore = await sampleEtcd(etcd);
      const was = { ids: await idsNow(), keys: keysNow() };
      await apply();
      const settled = await settle(clients, backends, registered, subset);
      const etcdAfter = await sampleEtcd(etcd);
      const callsAfter = await clients.calls();
      // The ideal from the ids etcd lists once the change has settled (clients joining register meanwhile).
      const is = { ids: await idsNow(), keys: keysNow() };
      const ideal = subsets === undefined ? undefined : idealMoves(subsets, was, is);
      const poolsAfter = await clients.subsets();
      const cameOrWent = new Set([...was.keys.filter((key) => !is.keys.includes(key)), ...is.keys.filter((key) => !was.keys.includes(key))]);
      const moved = movedBetween(pools, poolsAfter, cameOrWent);
      pools = poolsAfter;
      const opened = sum(settled.counts, (c) => c.opened) - sum(countsBefore, (c) => c.opened);
      const closed = sum(settled.counts, (c) => c.closed) - sum(countsBefore, (c) => c.closed);
      const held = sum(countsBefore, (c) => c.open);
      const churn = opened + closed - N * (moved.keysSwapped + moved.joinerKeys);
      const result: Change = { name, opened, closed, before: held, after: sum(settled.counts, (c) => c.open), churnPercent: (100 * (opened + closed)) / held, churn, ideal: ideal?.connections, idealChanged: ideal?.changed, failed: callsAfter.failed - callsBefore.failed, settle: settled, moved, check: await check(poolsAfter), etcdCpuMillis: etcdAfter.cpuMillis - etcdBefore.cpuMillis };
      changes.push(result);
      log(
        `${name}: ${opened} opened + ${closed} closed = ${result.churnPercent.toFixed(1)}% of ${held}${ideal === undefined ? '' : ` (the algorithm alone: ${ideal.connections})`}, ${churn} opened or closed beyond the subsets' changes; ` +
          `${moved.changed} of ${moved.stayed} clients changed subset (${moved.keysSwapped} keys${ideal === undefined ? '' : `; the algorithm alone: ${ideal.changed} clients`}), joiners took ${moved.joinerKeys}; ` +
          `${result.check.offSubset} subsets off the algorithm; ${result.failed} calls failed; ${settled.settled ? 'settled' : `NOT settled (${settled.detail})`} in ${(settled.millis / 1000).toFixed(1)} s${loggedSoFar(settled.census)}`,
      );
    };
    // Each change is one etcd revision (one transaction): the change the algorithm answers
    // to, not a series of them (one key at a time, a client may take a new key and drop it
    // again for the next one).
    await change(`+${addedKeys} keys (${K} → ${K + addedKeys})`, async () => {
      await atomically(writer, Array.from({ length: addedKeys }, (_, j) => [keyOf(K + j), JSON.stringify({ addr: backends.addresses[K + j], anchors: N })] as const), []);
      for (let j = 0; j < addedKeys; j++) registered.add(K + j);
    });
    // Original keys spread over the range (0, 10, 20, … for K = 100); their backends keep running.
    const removed = Array.from({ length: addedKeys }, (_, j) => Math.floor((j * K) / addedKeys));
    await change(`−${addedKeys} original keys (${K + addedKeys} → ${K})`, async () => {
      await atomically(writer, [], removed.map(keyOf));
      for (const i of removed) registered.delete(i);
    });
    await change(`+${joiners} clients (${C} → ${C + joiners})`, async () => {
      await clients.open(clientIds(C, C + joiners), contender.subset);
      ids = clientIds(0, C + joiners);
    });
    const total = await clients.calls('close');
    // Each pool's close deletes its own key and revokes its lease.
    const leftRegistered = coordinated ? (await registeredClients()).length : undefined;
    log(`${total.ok} calls ok, ${total.failed} failed in all${total.failed > 0 ? `: ${JSON.stringify(total.errors)}` : ''}${leftRegistered === undefined ? '' : `; ${leftRegistered} clients left registered once closed`}`);
    return { contender, clients: C, shards: clients.shards, initial, connections, calls, steadyCalls, fleetCallsPerSecond: (C * perClient * 1000) / roundMillis, changes, total, offIdeal, check: initialCheck, startOpened, startClosed, etcd: etcdLoad, leftRegistered };
  } finally {
    await clients.stop();
    // The next contender starts on backends that hold nothing, and with no client of this one registered (killed pools' keys go with their leases).
    const deadline = Date.now() + SETTLE_TIMEOUT_MILLIS;
    while ((await backends.counts()).backends.some((c) => c.open > 0) && Date.now() < deadline) await sleep(POLL_MILLIS);
    while ((await registeredClients()).length > 0 && Date.now() < deadline) await sleep(POLL_MILLIS);
  }
}

// ── the report ────────────────────────────────────────────────────────────────

const held = (r: ContenderRun): number => r.connections.reduce((s, c) => s + c, 0);
const mean = (values: readonly number[]): number => values.reduce((s, v) => s + v, 0) / values.length;
const one = (value: number) => summarize([value]);
const pct = (value: number, of: number): string => `${value >= of ? '+' : '−'}${Math.abs((100 * (value - of)) / of).toFixed(1)}%`;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');

function distributionRow(name: string, run: ContenderRun, scale = 1): ScenarioRow {
  const connections = run.connections.map((c) => c * scale);
  const m = mean(connections);
  return {
    contender: name,
    values: {
      clients: one(run.clients * scale),
      connections: one(connections.reduce((s, c) => s + c, 0)),
      connMin: one(Math.min(...connections)),
      connMedian: one(quantile(connections, 0.5)),
      connMax: one(Math.max(...connections)),
      connMean: one(m),
      connLowPct: one((100 * (Math.min(...connections) - m)) / m),
      connHighPct: one((100 * (Math.max(...connections) - m)) / m),
    },
  };
}

function callsRow(name: string, run: ContenderRun, scale = 1): ScenarioRow {
  const calls = run.calls.map((c) => c * scale);
  const m = mean(calls);
  return {
    contender: name,
    values: {
      callsMaxOverMean: one(Math.max(...calls) / m),
      callsMinOverMean: one(Math.min(...calls) / m),
      callsMin: one(Math.min(...calls)),
      callsMean: one(m),
      callsMax: one(Math.max(...calls)),
      ...(scale === 1 && { fleetCallsPerSecond: one(run.fleetCallsPerSecond), failed: one(run.steadyCalls.failed) }),
    },
  };
}

function changeRow(name: string, change: Change, scale = 1): ScenarioRow {
  return {
    contender: name,
    values: {
      movedPct: one(movedOncePercent(change)),
      ...(change.ideal !== undefined && { idealPct: one((100 * change.ideal) / 2 / change.before) }),
      churnPct: one(change.churnPercent),
      opened: one(change.opened * scale),
      closed: one(change.closed * scale),
      heldBefore: one(change.before * scale),
      ...(scale === 1 && {
        subsetsChanged: one(change.moved.changed),
        churn: one(change.churn),
        settleMs: one(change.settle.millis),
        etcdCpuMs: one(change.etcdCpuMillis),
        failed: one(change.failed),
      }),
    },
  };
}

function etcdRow(name: string, run: ContenderRun): ScenarioRow {
  const { steady, start } = run.etcd;
  return {
    contender: name,
    values: {
      etcdCpuMsPerS: one(steady.cpuMillisPerSecond),
      renewalsPerS: one(steady.renewalsPerSecond),
      leasesLive: one(steady.leasesLive),
      keepaliveStreams: one(steady.keepaliveStreams),
      watchers: one(steady.watchers),
      watchStreams: one(steady.watchStreams),
      etcdRssMiB: one(steady.rss / 2 ** 20),
      startEtcdCpuMs: one(start.cpuMillis),
      leasesGranted: one(start.leasesGranted),
    },
  };
}

async function run(context: BenchContext): Promise<ScenarioResult> {
  const profile: Profile = context.tiny
    ? { clients: 20, keys: 20, steadyMillis: 2000 }
    : context.quick
      ? { clients: 200, keys: 100, steadyMillis: 10_000 }
      : { clients: 1000, keys: 100, steadyMillis: 10_000 };
  const addedKeys = added(profile);
  await ensureEtcdInstalled({ log: context.log });
  const cluster = await startCluster({ members: 1 });
  const backends = new Backends();
  const writer = new Etcd3({ hosts: cluster.hosts });
  const etcd: EtcdSite = { hosts: cluster.hosts, clientUrl: cluster.endpoints[0]!, pid: cluster.members[0]!.pid };
  const runs: ContenderRun[] = [];
  try {
    await backends.start(profile.keys + addedKeys);
    for (const contender of CONTENDERS) runs.push(await runContender(context, contender, profile, etcd, writer, backends));
  } finally {
    writer.close();
    await backends.stop();
    await cluster.stop();
  }

  // Without subsetting, C clients by arithmetic from the clients it held: every client
  // connects to every key, so each figure of connections scales with the clients.
  const extrapolated = runs.filter((r) => r.contender.subset === null && r.clients < profile.clients);
  const arithmetic = (r: ContenderRun) => `${r.contender.name} (${int(profile.clients)} clients, by arithmetic)`;
  const measured = (r: ContenderRun) => (r.clients < profile.clients ? `${r.contender.name} (${int(r.clients)} clients)` : r.contender.name);
  const changeNames = runs[0]!.changes.map((c, i) => ({ i, name: c.name.replace(/\(\d+ → \d+\)/, '').trim() }));

  const bars: Bar[] = [];
  for (const r of runs) {
    const m = mean(r.connections);
    const cm = mean(r.calls);
    if (r.contender.balanced) {
      const low = Math.min(...r.connections);
      const high = Math.max(...r.connections);
      bars.push({
        label: `${r.contender.name}: every backend within ±${BAR_BALANCE_PERCENT}% of the mean connection count`,
        pass: Math.max(m - low, high - m) <= (BAR_BALANCE_PERCENT / 100) * m,
        detail: `${int(low)} / ${int(high)} connections against a mean of ${m.toFixed(1)} (${pct(low, m)} / ${pct(high, m)})`,
      });
      bars.push({
        label: `${r.contender.name}: every backend within ±${BAR_BALANCE_PERCENT}% of the mean call rate`,
        pass: Math.max(cm - Math.min(...r.calls), Math.max(...r.calls) - cm) <= (BAR_BALANCE_PERCENT / 100) * cm,
        detail: `${int(Math.min(...r.calls))} / ${int(Math.max(...r.calls))} calls against a mean of ${cm.toFixed(1)} over ${profile.steadyMillis / 1000} s`,
      });
    }
    if (r.contender.moveBar) {
      for (const c of r.changes.slice(0, 2)) {
        bars.push({
          label: `${r.contender.name}: ${c.name} moves ≤ ${BAR_MOVED_PERCENT}% of connections (one closed on a backend and opened on another is one moved)`,
          pass: movedOncePercent(c) <= BAR_MOVED_PERCENT && c.settle.settled,
          detail: `${int(c.closed)} of ${int(c.before)} closed and replaced: ${movedOncePercent(c).toFixed(1)}%${c.ideal === undefined ? '' : ` (the algorithm alone implies ${((100 * c.ideal) / 2 / c.before).toFixed(1)}%)`}; as connection churn, ${int(c.closed)} closed + ${int(c.opened)} opened = ${c.churnPercent.toFixed(1)}%${c.settle.settled ? '' : `; did not settle: ${c.settle.detail}`}`,
        });
      }
    }
    const failedByPhase = [`round ${r.steadyCalls.failed}`, ...r.changes.map((c) => `${c.name} ${c.failed}`)].join(', ');
    const last = r.changes.at(-1)?.settle.census ?? r.initial.census;
    bars.push({
      label: `${measured(r)}: 0 failed calls throughout`,
      pass: r.total.failed === 0 && last.errors === 0,
      detail: `${int(r.total.ok)} ok, ${r.total.failed} failed (${failedByPhase}; the rest between changes or while closing); ${last.errors} pool 'error' events${r.total.failed > 0 ? `; errors: ${JSON.stringify(r.total.errors)}` : ''}`,
    });
  }

  const notes: string[] = [];
  for (const r of runs) {
    const m = mean(r.connections);
    const cm = mean(r.calls);
    if (r.contender.subset !== null && !r.contender.balanced) {
      const p = Math.min(1, S / profile.keys);
      notes.push(
        `${r.contender.name} spread (no bar): connections per backend ${int(Math.min(...r.connections))} / ${int(quantile(r.connections, 0.5))} / ${int(Math.max(...r.connections))} (min / median / max), mean ${m.toFixed(1)}, so ${pct(Math.min(...r.connections), m)} / ${pct(Math.max(...r.connections), m)}; ` +
          `calls per backend max / mean ${(Math.max(...r.calls) / cm).toFixed(2)}, min / mean ${(Math.min(...r.calls) / cm).toFixed(2)}. ` +
          `Independent random subsets put each backend in Binomial(C = ${r.clients}, S/K = ${p.toFixed(2)}) subsets: a standard deviation of ${((100 * Math.sqrt(r.clients * p * (1 - p))) / (r.clients * p)).toFixed(1)}% of the mean, so over ${profile.keys} backends the extremes sit about ±2.5 of them from it.`,
      );
    }
    if (r.offIdeal !== undefined && r.contender.subset !== null) notes.push(`${r.contender.name}: ${r.offIdeal === 0 ? 'every' : `${r.offIdeal} of ${profile.keys}`} key${r.offIdeal === 0 ? "'s" : 's\''} count of clients keeping it ${r.offIdeal === 0 ? 'matches' : 'differ from'} the subsets computed from ${r.contender.clientsPrefix === undefined ? 'the client ids alone' : 'the client ids etcd listed'}, once settled at the start.`);
    if (r.contender.subsets !== undefined) {
      const checks = [r.check, ...r.changes.map((c) => c.check)];
      const off = checks.reduce((s, c) => s + c.offSubset + c.offPlace + c.strangers, 0);
      notes.push(
        `${r.contender.name}: client by client, ${off === 0 ? 'every' : 'NOT every'} pool's chosen keys${r.contender.clientsPrefix === undefined ? '' : ' and view of the clients (their count, its rank among their ids)'} matched the algorithm for ${r.contender.clientsPrefix === undefined ? 'its client ids' : `the client ids etcd listed under ${r.contender.clientsPrefix}`} and the keys, once settled at the start and after each change` +
          (off === 0 ? '.' : `: ${checks.map((c, i) => `${i === 0 ? 'start' : r.changes[i - 1]!.name} ${c.offSubset} subsets${r.contender.clientsPrefix === undefined ? '' : ` / ${c.offPlace} views`} of ${c.clients} off, ${c.strangers} strangers`).join('; ')}.`),
      );
    }
    if (r.startOpened !== held(r) || r.startClosed > 0) {
      notes.push(`${measured(r)}: to reach ${int(held(r))} connections at the start the backends saw ${int(r.startOpened)} opened and ${int(r.startClosed)} closed${r.contender.clientsPrefix === undefined ? '' : ' (a coordinated pool computes its subset from its first listing, while the clients are still registering; its subset moves as they register, once per burst: 500 ms after a change, doubling up to 4 s while changes keep coming)'}.`);
    }
    // Warnings and errors say what the fleet's figures do not (a registration retried, a connection attempt given up).
    const logged = Object.entries((r.changes.at(-1)?.settle.census ?? r.initial.census).logged).sort((x, y) => y[1].count - x[1].count);
    const loggedCount = (census: Census) => Object.values(census.logged).reduce((sum, l) => sum + l.count, 0);
    notes.push(
      logged.length === 0
        ? `${measured(r)}: the pools logged no warning or error.`
        : `${measured(r)}: the pools logged ${int(loggedCount(r.changes.at(-1)?.settle.census ?? r.initial.census))} warnings and errors (${int(loggedCount(r.initial.census))} of them by the time they first settled)${logged.length > 5 ? `; the 5 most frequent of ${logged.length} kinds` : ''}: ` +
            `${logged.slice(0, 5).map(([message, { count, example }]) => `${int(count)} × "${message}"${example === '' ? '' : ` (the first: ${example})`}`).join('; ')}.`,
    );
    const unsettled = [r.initial, ...r.changes.map((c) => c.settle)].filter((s) => !s.settled);
    if (unsettled.length > 0) notes.push(`${r.contender.name}: ${unsettled.length} phase(s) did not settle within ${SETTLE_TIMEOUT_MILLIS / 1000} s: ${unsettled.map((s) => s.detail).join(' | ')}`);
    const end = r.changes.at(-1)?.settle.census ?? r.initial.census;
    notes.push(
      `${measured(r)}: the pools' liveness check gave up ${int(r.initial.census.connectTimeouts)} connection attempts at connectTimeoutMillis (default 3 s) and dropped ${int(r.initial.census.frozen)} silent connections while the first ${int(r.connections.reduce((s, c) => s + c, 0))} came up (each then connected again), and ${int(end.connectTimeouts - r.initial.census.connectTimeouts)} / ${int(end.frozen - r.initial.census.frozen)} after that.`,
    );
    notes.push(
      `${measured(r)}: ${r.shards} client process(es) (at most ${int((r.changes.at(-1)?.settle.census ?? r.initial.census).peakDescriptors)} file descriptors open in one at a census, of ${int(FD_LIMIT)}); ${int(r.connections.reduce((s, c) => s + c, 0))} connections up and settled ${(r.initial.millis / 1000).toFixed(1)} s after the pools were created; client RSS ${(r.initial.census.rss / 2 ** 20).toFixed(0)} MiB in all (${(r.initial.census.rss / 1024 / r.connections.reduce((s, c) => s + c, 0)).toFixed(1)} KiB per connection, with the processes' own), backends' RSS ${(r.initial.backendRss / 2 ** 20).toFixed(0)} MiB in all.`,
    );
  }
  // etcd's cost of the coordination: one lease per client kept alive on a stream of its own (etcd3's Lease), and one more watcher per client.
  const plain = runs.find((r) => r.contender.subset !== null && r.contender.clientsPrefix === undefined);
  for (const r of runs.filter((r) => r.contender.clientsPrefix !== undefined)) {
    const ttl = r.contender.subset?.ttlSeconds ?? DEFAULT_CLIENT_TTL_SECONDS;
    const { steady, start } = r.etcd;
    notes.push(
      `${r.contender.name}, etcd's load: ${int(r.clients)} clients registered on ${int(start.leasesGranted)} leases granted while they started (etcd CPU ${int(start.cpuMillis)} ms from the pools' creation until settled${plain === undefined ? '' : `, against ${int(plain.etcd.start.cpuMillis)} ms for ${plain.contender.name}`}); ` +
        `the clients of one process share one lease (shared-lease.ts), renewed once every TTL/3 = ${(ttl / 3).toFixed(1)} s on a short keepalive stream, so ${(r.shards / (ttl / 3)).toFixed(1)}/s expected from ${r.shards} client processes: over the ${steady.seconds.toFixed(1)} s round etcd counted ${steady.renewalsPerSecond.toFixed(0)} renewals/s on ${int(steady.keepaliveStreams)} keepalive streams, holding ${int(steady.leasesLive)} leases, with ${int(steady.watchers)} watchers on ${int(steady.watchStreams)} watch streams, ` +
        `and used ${steady.cpuMillisPerSecond.toFixed(1)} ms of CPU per second (${(steady.cpuMillisPerSecond / 10).toFixed(1)}% of a core)${plain === undefined ? '' : ` against ${plain.etcd.steady.cpuMillisPerSecond.toFixed(1)} ms/s with ${int(plain.etcd.steady.watchers)} watchers for ${plain.contender.name} (no registrations)`}; RSS ${(steady.rss / 2 ** 20).toFixed(0)} MiB. ` +
        `${r.leftRegistered === 0 ? 'Once its pools closed, no client was left registered.' : `${r.leftRegistered} clients were left registered once its pools closed.`}`,
    );
    // Keys coming or going: the swaps the keys that changed force, and those the room moving between keys that stayed adds.
    const alone = (c: Change): string => (c.ideal === undefined ? '' : `; the algorithm alone implies ${((100 * c.ideal) / c.before).toFixed(1)}% churn (closed + opened) and ${int(c.idealChanged!)} clients changed, against ${c.churnPercent.toFixed(1)}% measured`);
    for (const c of r.changes.slice(0, 2)) {
      const m = c.moved;
      notes.push(
        `${r.contender.name}, ${c.name}: ${int(m.changed)} of ${int(m.stayed)} clients changed subset, swapping ${int(m.keysSwapped)} keys; the keys that came or went account for ${int(2 * m.changedKeys)} of those swaps (a client that takes or drops one trades it for another key: ${((100 * 2 * N * m.changedKeys) / c.before).toFixed(1)}% of the connections), ` +
          `the other ${int(m.keysSwapped - 2 * m.changedKeys)} (${((100 * N * (m.keysSwapped - 2 * m.changedKeys)) / c.before).toFixed(1)}%) are between keys that stayed: each key has room for ⌊C·S/K⌋ clients (or one more), so as K changes every key's room changes: on a key that lost room the clients whose pairs scored last take their next best key with room, and on one that gained room pairs that scored too low before get in, freeing their clients' worse keys` +
          `${alone(c)}.`,
      );
    }
    const join = r.changes[2];
    if (join !== undefined) {
      const m = join.moved;
      const j = joining(r.clients);
      notes.push(
        `${r.contender.name}, ${join.name}: ${int(m.changed)} of ${int(m.stayed)} clients there before changed subset, swapping ${int(m.keysSwapped)} keys (${int(m.keysSwapped * N)} connections closed and opened), besides the joiners' own ${int(m.joinerKeys)} keys (${int(m.joinerKeys * N)} opened). ` +
          `The joiners need ${int(j * S)} places more on the same keys, so each key's room grows to ⌊(C + ${j})·S/K⌋ (or one more), and their pairs are taken best score first with everyone's: where a joiner's pair scores better than a client's on a key that fills, it takes that room and the client takes its next best key with room (and the larger room lets some clients in where they scored better than on a key they held)` +
          `${alone(join)} (the joiners' own connections included).`,
      );
    }
  }
  for (const r of extrapolated) {
    const scale = profile.clients / r.clients;
    notes.push(
      `${r.contender.name}: ${int(profile.clients)} clients × ${profile.keys} keys × ${N} = ${int(profile.clients * profile.keys * N)} connections were not run here: at the RSS measured with ${int(held(r))} (clients ${((r.initial.census.rss / 1024) / held(r)).toFixed(0)} + backends ${((r.initial.backendRss / 1024) / held(r)).toFixed(0)} KiB per connection, processes' own included) they take about ${(((r.initial.census.rss + r.initial.backendRss) / held(r)) * profile.clients * profile.keys * N / 2 ** 30).toFixed(1)} GiB of this machine's ${Math.round(os.totalmem() / 2 ** 30)}, and ${Math.ceil((profile.clients * profile.keys * N) / SHARD_CONNECTIONS)} client processes for their file descriptors; it ran with ${int(r.clients)} clients (${int(r.clients * (profile.keys + addedKeys) * N)} connections at ${profile.keys + addedKeys} keys, about what ${int(NONE_CONNECTIONS / (S * N))} subsetting clients hold). ` +
        `Without subsetting each backend holds exactly clients × N connections, so the "${arithmetic(r)}" rows are the measured ones × ${scale.toFixed(2)}; the moved percentages do not depend on the clients; a round puts one call on each connection, so calls per backend scale the same way.`,
    );
  }
  notes.push(
    `movedPct = connections the backends closed over the change until the fleet settled (each replaced by one opened elsewhere: one connection moved), as a % of the connections held before it; churnPct = closed + opened, where a connection re-homed counts twice. idealPct is what the algorithm alone implies for these client ids and keys, counted the same way as movedPct (computed here from the contender's algorithm, for the coordinated mode from the ids etcd listed before and after the change), so movedPct above it is churn of the pools' own. The least any subsetting can move: adding ${addedKeys} keys to ${profile.keys} gives the new keys ${((100 * addedKeys) / (profile.keys + addedKeys)).toFixed(1)}% of the subsets' places, so that many move; removing ${addedKeys} of ${profile.keys + addedKeys}, their ${((100 * addedKeys) / (profile.keys + addedKeys)).toFixed(1)}%. A client joining opens its own connections and moves nobody's.`,
    `The load: each client makes one round of Echo calls through pool.client(), one per anchor it holds, paced over ${profile.steadyMillis / 1000} s from a random phase (the default pick goes round the anchors, so each gets one), deadline ${CALL_DEADLINE_MILLIS / 1000} s; the servers count the calls per backend over the round (fleetCallsPerSecond: its calls over the time it took, timers running late included). Then the same rate per client runs through every change, where failed calls are counted.`,
    `Backends: ${profile.keys + addedKeys} grpc-js Echo servers in ${BACKEND_PROCESSES} processes; keys ${PREFIX}b0000… with anchors ${N}; etcd single node on loopback. Each contender runs once: the client ids are fixed (client-0, client-1, …; both subset modes hash each id with each key, so how the ids sort decides nothing), so the subsets, and every connection figure, are the same in every run; only the calls vary.`,
  );

  const groups: ScenarioResult['groups'] = [
    {
      name: `connections per backend, once settled (K = ${profile.keys}, N = ${N}, S = ${S})`,
      rows: [...runs.map((r) => distributionRow(measured(r), r)), ...extrapolated.map((r) => distributionRow(arithmetic(r), r, profile.clients / r.clients))],
    },
    { name: `calls per backend over one round of steady load (each client one call per anchor it holds, over ${profile.steadyMillis / 1000} s)`, rows: [...runs.map((r) => callsRow(measured(r), r)), ...extrapolated.map((r) => callsRow(arithmetic(r), r, profile.clients / r.clients))] },
    { name: "etcd's load: over the steady round (per second, and what it holds) and from the pools' creation until settled (start)", rows: runs.map((r) => etcdRow(measured(r), r)) },
    ...changeNames.map(({ i, name }) => ({
      name: `connections moved: ${name}`,
      rows: [...runs.map((r) => changeRow(`${measured(r)}: ${r.changes[i]!.name}`, r.changes[i]!)), ...extrapolated.map((r) => changeRow(arithmetic(r), r.changes[i]!, profile.clients / r.clients))],
    })),
  ];
  return {
    id: 'subsetting',
    title: 'Subsetting: connections and calls per backend, and connections moved, for C clients on K keys',
    settings: {
      clients: profile.clients,
      keys: profile.keys,
      anchorsPerKey: N,
      subsetSize: S,
      keysAddedAndRemoved: addedKeys,
      clientsJoining: joining(profile.clients),
      noneClients: runs.find((r) => r.contender.subset === null)?.clients ?? '-',
      steadyMillis: profile.steadyMillis,
      contenders: CONTENDERS.map((c) => c.name).join(', '),
    },
    metrics: [
      { name: 'connMedian', unit: 'connections', higherIsBetter: false },
      { name: 'clients', unit: 'clients', higherIsBetter: true },
      { name: 'connections', unit: 'in all', higherIsBetter: false },
      { name: 'connMin', unit: 'connections', higherIsBetter: false },
      { name: 'connMax', unit: 'connections', higherIsBetter: false },
      { name: 'connMean', unit: 'connections', higherIsBetter: false },
      { name: 'connLowPct', unit: '% vs mean', higherIsBetter: true },
      { name: 'connHighPct', unit: '% vs mean', higherIsBetter: false },
      { name: 'callsMaxOverMean', unit: 'x', higherIsBetter: false },
      { name: 'callsMinOverMean', unit: 'x', higherIsBetter: true },
      { name: 'callsMin', unit: 'calls', higherIsBetter: true },
      { name: 'callsMean', unit: 'calls', higherIsBetter: true },
      { name: 'callsMax', unit: 'calls', higherIsBetter: false },
      { name: 'fleetCallsPerSecond', unit: 'calls/s in all', higherIsBetter: true },
      { name: 'movedPct', unit: '% of connections', higherIsBetter: false },
      { name: 'idealPct', unit: '% by the algorithm alone', higherIsBetter: false },
      { name: 'churnPct', unit: '% opened + closed', higherIsBetter: false },
      { name: 'opened', unit: 'connections', higherIsBetter: false },
      { name: 'closed', unit: 'connections', higherIsBetter: false },
      { name: 'heldBefore', unit: 'connections', higherIsBetter: false },
      { name: 'subsetsChanged', unit: 'clients there before', higherIsBetter: false },
      { name: 'churn', unit: "beyond the subsets' changes", higherIsBetter: false },
      { name: 'settleMs', unit: 'ms', higherIsBetter: false },
      { name: 'etcdCpuMs', unit: 'ms of etcd CPU', higherIsBetter: false },
      { name: 'etcdCpuMsPerS', unit: 'ms of etcd CPU per s', higherIsBetter: false },
      { name: 'renewalsPerS', unit: 'lease renewals/s', higherIsBetter: false },
      { name: 'leasesLive', unit: 'leases at etcd', higherIsBetter: false },
      { name: 'keepaliveStreams', unit: 'streams at etcd', higherIsBetter: false },
      { name: 'watchers', unit: 'at etcd', higherIsBetter: false },
      { name: 'watchStreams', unit: 'at etcd', higherIsBetter: false },
      { name: 'etcdRssMiB', unit: 'MiB', higherIsBetter: false },
      { name: 'startEtcdCpuMs', unit: 'ms of etcd CPU', higherIsBetter: false },
      { name: 'leasesGranted', unit: 'at the start', higherIsBetter: false },
      { name: 'failed', unit: 'calls', higherIsBetter: false },
    ],
    primary: 'connMedian',
    ...(extrapolated[0] !== undefined && { baseline: arithmetic(extrapolated[0]) }),
    groups,
    bars,
    notes,
  };
}

export const subsettingScenario: Scenario = { id: 'subsetting', title: 'Subsetting: C clients, K backends, N = 2, S = 10', run };
