// Issue 23, coordinated subsetting under faults: K real grpc-js Echo backends registered
// under a prefix with N anchors each, and C coordinated clients (subset size S, lease TTL
// 3 s) in two child processes (subset-clients.ts), half pools (pool.client()) and half
// plain grpc-js channels on etcd:/// (anchored_round_robin), alternating by id. Every
// client runs closed-loop Echo calls (2 callers, 10 ms per call on the server) throughout.
// The client ids are c00…c19, and the second process holds c10…c19: when it dies, the keys
// only its clients held are left uncovered until the survivors hear of it and take them
// (every key is in ⌊C·S/K⌋ subsets at least, so with C·S ≥ K each key loses some).
//
// What is measured, and how:
// - a backend's connections are counted by the server (Backend.stats(): the remote ports
//   of the TCP connections it holds), so "the same connections" means the same ports;
// - a pool's subset is its stats().subset; a channel's is the set of backends that
//   answered its calls (its 2 callers go round its subset's anchors, ~100 calls a second);
// - the clients' registrations are read from etcd (a listing of the clients prefix with
//   each sample once etcd is back): a key that lapsed and was put again has a new
//   create revision;
// - what the algorithm promises (coordinated-assignment.ts): every client computes the
//   fleet's assignment from the registered ids and the keys, and every key is in
//   ⌊C·S/K⌋ or ⌈C·S/K⌉ subsets. Each client's expected subset is computed with lib's
//   assignSubsets (lib/internal.js) from the ids alive; the bars on the spread are
//   checked on what was observed, not on that computation.
//
// Phases:
//   0. start: every client places itself (reported, no bar);
//   1. steady: each key in ⌊C·S/K⌋..⌈C·S/K⌉ subsets, each backend holding exactly N × its
//      subsets' connections at every sample, each client on the keys of its place, 0 failed;
//   2. etcd down (the single member SIGKILLed) for more than 2 × TTL: the same connections
//      (ports) on every backend at every sample, the same keys per client, 0 failed calls;
//      no registration is given up (a process's lease counts as lost only when etcd says
//      it ended, shared-lease.ts);
//   3. etcd back: etcd extends the leases it holds when it restarts, and each process's
//      next keepalive (a third of a TTL) keeps its lease, so every key stays on the lease
//      it had (a key claimed again on a new lease would have a new lease id; one that
//      lapsed, a new create revision): no key is deleted and no subset moves; 0 failed calls;
//   4. from the steady state again (awaited after phase 3, whatever it moved), the second
//      process SIGKILLed (its leases are not revoked, its keys stay until they lapse):
//      the survivors see C/2 clients and widen. Times from the kill to every
//      backend covered again (it holds a connection and answers survivors' calls), to every
//      survivor on its new place (pools by their stats, channels by the backends that
//      answer them), and to every backend at N × its subsets' connections; every key in
//      ⌊(C/2)·S/K⌋..⌈(C/2)·S/K⌉ subsets and ≥ 1; the survivors fail no call.
//
// The bars of phase 4. Covered and placed: one lease TTL + ALLOWANCE_MILLIS. A dead
// client's lease ends at most one TTL after its last keepalive (renewed every TTL/3, so
// 2/3 TTL to 1 TTL after the kill); etcd revokes expired leases in a loop that runs
// every 500 ms; a process publishes the ids 500 ms after the first change of a burst
// (clients-watch.ts); then the new anchors connect (make
// before break) and the 100 ms sampling adds its period. So ALLOWANCE_MILLIS = 500 (etcd's
// expiry loop) + 500 (settle) + 500 (connect, sampling); the log breaks the measured time
// down into these parts. The connections counted by the backends: the same + 10 s. A pool's
// anchor closes its own channel, and its connection, at once; an anchor of an etcd:///
// channel is a subchannel of grpc-js's subchannel pool, which holds a reference of its own
// and lets unused subchannels go in a sweep every 10 s (grpc-js subchannel-pool.ts,
// REF_CHECK_INTERVAL): a key a channel dropped keeps its (idle) connection up to 10 s.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { assignSubsets } from '../../lib/internal.js';
import { Backend, killOnExit } from '../../testkit/echo/backend.js';
import { check, sleep, type FaultCheck, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';
import type { ClientPath, ClientSample, ClientSpec, ClientsReply, ClientsRequest } from './subset-clients.js';

const CHILD = fileURLToPath(new URL('./subset-clients.js', import.meta.url));
const PREFIX = 'subset-coordinated/';
/** The default clients prefix (client-membership.ts: CLIENTS_ROOT + the backends' prefix). */
const CLIENTS_PREFIX = `anchorpool.clients/${PREFIX}`;
const SERVER_DELAY_MILLIS = 10;
const CALLERS_PER_CLIENT = 2;
const CALL_DEADLINE_MILLIS = 5000;
/** See the header. */
const ALLOWANCE_MILLIS = 1500;
const SUBCHANNEL_SWEEP_MILLIS = 10_000;
/** How long a state must hold to count as settled at the start, and how often it is sampled. */
const STABLE_MILLIS = 1000;
const SAMPLE_MILLIS = 250;
const FAST_SAMPLE_MILLIS = 100;
/** A channel is on its place when the last window's answers came from its subset only, and the last CHANNEL_WINDOWS windows' from all of it. */
const CHANNEL_WINDOWS = 3;

interface Profile {
  /** K backends, N anchors each, C clients, subset size S. */
  readonly backends: number;
  readonly anchors: number;
  readonly clients: number;
  readonly size: number;
  readonly ttlSeconds: number;
  readonly steadyMillis: number;
  readonly outageMillis: number;
  /** Phase 3 lasts at least this long after etcd is back (past the old leases' end), and half of it after the clients registered again. */
  readonly afterRestartMillis: number;
  /** Phase 4: how long the balanced state is watched once reached. */
  readonly afterBalancedMillis: number;
}

// Full: C·S/K = 3.33 with C = 20 (3 or 4 subsets a key) and 1.67 with C/2 = 10 (1 or 2),
// so both bounds are exercised. Short: K = 10, N = 1, C·S/K = 4 and then 2 exactly.
const FULL: Profile = { backends: 12, anchors: 2, clients: 20, size: 2, ttlSeconds: 3, steadyMillis: 5000, outageMillis: 10_000, afterRestartMillis: 7000, afterBalancedMillis: 3000 };
const SHORT: Profile = { backends: 10, anchors: 1, clients: 20, size: 2, ttlSeconds: 3, steadyMillis: 2000, outageMillis: 7000, afterRestartMillis: 5000, afterBalancedMillis: 1500 };

type Without<T> = T extends unknown ? Omit<T, 'id'> : never;

/** One child process of clients, driven over IPC. */
class ClientsProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  #next = 0;
  readonly #pending = new Map<number, { resolve: (reply: ClientsReply) => void; reject: (err: Error) => void }>();

  constructor(readonly name: string) {
    this.child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    killOnExit(this.child);
    this.child.on('message', (reply: ClientsReply) => {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      pending.resolve(reply);
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        for (const p of this.#pending.values()) p.reject(new Error(`client process ${name} exited (${signal ?? code})`));
        this.#pending.clear();
        resolve();
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  ask<R extends ClientsReply>(request: Without<ClientsRequest>, timeoutMillis = 10_000): Promise<R> {
    if (!this.alive) return Promise.reject(new Error(`client process ${this.name} is not running`));
    const id = ++this.#next;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`client process ${this.name}: no answer to ${request.type} in ${timeoutMillis} ms`));
      }, timeoutMillis);
      this.#pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply as R);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.child.send({ ...request, id });
    });
  }

  async sample(): Promise<ClientSample[]> {
    return (await this.ask<Extract<ClientsReply, { type: 'sample' }>>({ type: 'sample' })).clients;
  }

  /** SIGKILL: the clients die without closing (no key deleted, no lease revoked). */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** A client's key in etcd: its lease (decimal) and the revision that created the key. */
interface Registered {
  readonly lease: string;
  readonly created: string;
}

interface Sample {
  /** performance.now() when the sample was asked for. */
  readonly at: number;
  /** Per backend (in name order): the remote ports of the connections it holds, sorted. */
  readonly ports: readonly (readonly number[])[];
  /** The live clients, by id. */
  readonly clients: ReadonlyMap<string, ClientSample>;
  /** The clients' keys in etcd, when listed with this sample (and etcd answered within 1 s). */
  readonly listing?: ReadonlyMap<string, Registered> | undefined;
}

/** What kept a state from settling, sample by sample: each change of reason with its time. */
class Reasons {
  readonly #steps: { at: number; why: string }[] = [];
  note(at: number, why: string | undefined): void {
    const text = why ?? 'settled';
    if (this.#steps[this.#steps.length - 1]?.why !== text) this.#steps.push({ at, why: text });
  }
  line(): string {
    const steps = this.#steps.length > 16 ? [...this.#steps.slice(0, 8), { at: NaN, why: `… ${this.#steps.length - 16} more …` }, ...this.#steps.slice(-8)] : this.#steps;
    return steps.map((s) => (Number.isNaN(s.at) ? s.why : `${Math.round(s.at)}: ${s.why}`)).join(' | ');
  }
}

/** The time of the first sample from which on `ok` holds in every later one; undefined when it does not hold in the last. */
function holdsFrom(samples: readonly Sample[], ok: (index: number) => boolean): number | undefined {
  let from: number | undefined;
  for (let i = samples.length - 1; i >= 0 && ok(i); i--) from = samples[i]!.at;
  return from;
}

const sameList = (a: readonly unknown[], b: readonly unknown[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const ms = (v: number | undefined): string => (v === undefined ? 'never' : `${Math.round(v)} ms`);

export const subsetCoordinatedScenario: FaultScenario = {
  id: 'subset-coordinated',
  title:
    'coordinated subsets (pools and etcd:/// channels): every backend in ⌊C·S/K⌋..⌈C·S/K⌉ subsets; etcd down > 2 TTL keeps every connection and key, and after it none moves; half the clients SIGKILLed → the rest cover every backend and take their new places within one lease TTL (+1.5 s); 0 failed calls',
  async run(context) {
    const p = context.short ? SHORT : FULL;
    const ttlMillis = p.ttlSeconds * 1000;
    const bar = ttlMillis + ALLOWANCE_MILLIS;
    const connsBar = bar + SUBCHANNEL_SWEEP_MILLIS;
    const names = Array.from({ length: p.backends }, (_, i) => `b${String(i + 1).padStart(2, '0')}`);
    const keys = names.map((n) => `${PREFIX}${n}`);
    const keyIndex = new Map(keys.map((k, i) => [k, i]));
    const nameIndex = new Map(names.map((n, i) => [n, i]));
    const specs: ClientSpec[] = Array.from({ length: p.clients }, (_, i) => ({ id: `c${String(i).padStart(2, '0')}`, path: i % 2 === 0 ? 'pool' : 'channel' }));
    const allIds = specs.map((s) => s.id);
    const survivorIds = allIds.slice(0, p.clients / 2);
    const deadIds = allIds.slice(p.clients / 2);
    const pathOf = new Map<string, ClientPath>(specs.map((s) => [s.id, s.path]));
    const pools = allIds.filter((id) => pathOf.get(id) === 'pool');
    const survivingPools = survivorIds.filter((id) => pathOf.get(id) === 'pool');

    /** Per client: the keys (as backend indexes, sorted) the algorithm gives it among `ids`. */
    const expected = (ids: readonly string[]): Map<string, number[]> => {
      const assignment = assignSubsets(ids, keys, p.size);
      return new Map(ids.map((id) => [id, assignment.get(id)!.map((k) => keyIndex.get(k)!).sort((a, b) => a - b)]));
    };
    /** Per backend: in how many of `subsets`. */
    const countsOf = (subsets: Iterable<readonly number[]>): number[] => {
      const counts = names.map(() => 0);
      for (const s of subsets) for (const i of s) counts[i]! += 1;
      return counts;
    };
    const bounds = (clients: number): [number, number] => [Math.floor((clients * p.size) / p.backends), Math.ceil((clients * p.size) / p.backends)];
    const show = (indexes: readonly number[]): string => indexes.map((i) => names[i] ?? '?').join('+');
    const countsLine = (counts: readonly number[]): string => counts.map((n, i) => `${names[i]} ${n}`).join(', ');

    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const member = cluster.members[0]!;
      const etcd: Etcd3 = rig.etcdClient(cluster);
      const backends = names.map((name) => new Backend({ name, delayMillis: SERVER_DELAY_MILLIS }));
      rig.defer(() => Promise.all(backends.map((b) => b.kill())));
      await Promise.all(backends.map((b) => b.start()));
      for (const [i, b] of backends.entries()) await etcd.put(keys[i]!).value(JSON.stringify({ addr: b.address, anchors: p.anchors }));

      const processes = [new ClientsProcess('A'), new ClientsProcess('B')];
      rig.defer(() => Promise.all(processes.map((c) => c.kill())));
      const [procA, procB] = processes as [ClientsProcess, ClientsProcess];
      const t0 = performance.now();
      for (const [proc, ids] of [
        [procA, survivorIds],
        [procB, deadIds],
      ] as const) {
        const reply = await proc.ask<Extract<ClientsReply, { type: 'start' }>>({
          type: 'start',
          hosts: cluster.hosts,
          prefix: PREFIX,
          clients: specs.filter((s) => ids.includes(s.id)),
          size: p.size,
          ttlSeconds: p.ttlSeconds,
          callers: CALLERS_PER_CLIENT,
          deadlineMillis: CALL_DEADLINE_MILLIS,
        });
        if (reply.type === 'start' && reply.error !== undefined) throw new Error(`client process ${proc.name} did not start its clients: ${reply.error}`);
      }

      const listClients = (): Promise<Map<string, Registered> | undefined> =>
        etcd
          .getAll()
          .prefix(CLIENTS_PREFIX)
          .options({ deadline: Date.now() + 1000 })
          .exec()
          .then((r) => new Map(r.kvs.map((kv) => [kv.key.toString('utf8').slice(CLIENTS_PREFIX.length), { lease: kv.lease, created: kv.create_revision }])))
          .catch(() => undefined);
      const take = async (withListing: boolean): Promise<Sample> => {
        const at = performance.now();
        const live = processes.filter((c) => c.alive);
        const [listing, stats, ...perProcess] = await Promise.all([withListing ? listClients() : undefined, Promise.all(backends.map((b) => b.stats())), ...live.map((c) => c.sample())]);
        const clients = new Map<string, ClientSample>();
        for (const list of perProcess) for (const c of list) clients.set(c.id, c);
        return { at, ports: stats.map((s) => [...s.connections].sort((a, b) => a - b)), clients, listing };
      };
      /** Samples every `period` until `until()` says stop (checked after each sample). */
      const observe = async (period: number, withListing: boolean, until: (s: Sample, all: Sample[]) => boolean): Promise<Sample[]> => {
        const all: Sample[] = [];
        for (;;) {
          const s = await take(withListing);
          all.push(s);
          if (until(s, all)) return all;
          await sleep(Math.max(0, s.at + period - performance.now()));
        }
      };
      /** A pool's keys (every reason) as backend indexes, sorted. */
      const poolKeys = (c: ClientSample | undefined): number[] => (c?.subset?.keys ?? []).map((k) => keyIndex.get(k.key) ?? -1).sort((a, b) => a - b);
      /** Backends that answered a client's calls between two samples, as indexes, sorted. */
      const answeredBetween = (id: string, from: Sample, to: Sample): number[] => {
        const a = from.clients.get(id)?.answered ?? {};
        const b = to.clients.get(id)?.answered ?? {};
        return Object.keys(b)
          .filter((server) => (b[server] ?? 0) > (a[server] ?? 0))
          .map((server) => nameIndex.get(server) ?? -1)
          .sort((x, y) => x - y);
      };
      /** Calls the clients `ids` finished between two samples. */
      const callsBetween = (ids: readonly string[], from: Sample, to: Sample): { ok: number; failed: number; detail: string } => {
        let ok = 0;
        let failed = 0;
        const byCode = new Map<string, number>();
        const examples: string[] = [];
        for (const id of ids) {
          const a = from.clients.get(id);
          const b = to.clients.get(id);
          if (b === undefined) continue;
          ok += b.ok - (a?.ok ?? 0);
          failed += b.failed - (a?.failed ?? 0);
          for (const [code, n] of Object.entries(b.failures)) {
            const d = n - (a?.failures[code] ?? 0);
            if (d > 0) byCode.set(code, (byCode.get(code) ?? 0) + d);
          }
          if (b.failed > (a?.failed ?? 0)) examples.push(...b.examples.slice(0, 1).map((e) => `${id}: ${e}`));
        }
        const detail = failed === 0 ? '0 failed' : `${failed} failed (${[...byCode].map(([c, n]) => `${n} ${c}`).join(', ')}; ${examples.slice(0, 3).join(' | ')})`;
        return { ok, failed, detail };
      };
      /** Why the pools of `ids` are not on their places among `ids` in sample `s`; undefined: they are. */
      const poolsOff = (s: Sample, ids: readonly string[], want: ReadonlyMap<string, number[]>): string | undefined => {
        for (const id of ids) {
          if (pathOf.get(id) !== 'pool') continue;
          const c = s.clients.get(id);
          const place = c?.subset?.coordination;
          if (place === undefined) return `${id} has no place yet`;
          if (place.clients !== ids.length || !place.registered || place.conflict !== undefined) return `${id} sees ${place.clients} clients (registered ${place.registered}${place.conflict ? `, conflict ${place.conflict}` : ''})`;
          if (c!.subset!.keys.some((k) => k.why !== 'chosen')) return `${id} keeps ${c!.subset!.keys.filter((k) => k.why !== 'chosen').map((k) => `${k.key.slice(PREFIX.length)} (${k.why})`).join(', ')}`;
          if (!sameList(poolKeys(c), want.get(id)!)) return `${id} on ${show(poolKeys(c))}, its place gives ${show(want.get(id)!)}`;
        }
        return undefined;
      };
      /** Why the channels of `ids` are not on their places at samples[i]: an answer from outside the subset in the last window, or a key of it silent over the last CHANNEL_WINDOWS. */
      const channelsOff = (samples: readonly Sample[], i: number, ids: readonly string[], want: ReadonlyMap<string, number[]>, before: Sample): string | undefined => {
        const prev = i === 0 ? before : samples[i - 1]!;
        const early = i - CHANNEL_WINDOWS < 0 ? before : samples[i - CHANNEL_WINDOWS]!;
        for (const id of ids) {
          if (pathOf.get(id) !== 'channel') continue;
          const wanted = want.get(id)!;
          const last = answeredBetween(id, prev, samples[i]!);
          const outside = last.filter((k) => !wanted.includes(k));
          if (outside.length > 0) return `${id} answered by ${show(outside)}, its place gives ${show(wanted)}`;
          const recent = answeredBetween(id, early, samples[i]!);
          const silent = wanted.filter((k) => !recent.includes(k));
          if (silent.length > 0) return `${id}: no answer from ${show(silent)} of its place ${show(wanted)}`;
        }
        return undefined;
      };
      /** Why the backends do not hold N × (their subsets among `ids`) connections; undefined: they do. */
      const connsOff = (s: Sample, counts: readonly number[]): string | undefined => {
        const off = names.map((n, i) => ({ n, have: s.ports[i]!.length, want: p.anchors * counts[i]! })).filter((b) => b.have !== b.want);
        return off.length === 0 ? undefined : `connections ≠ N × subsets on ${off.map((b) => `${b.n} ${b.have}≠${b.want}`).join(', ')}`;
      };
      const connsLine = (s: Sample): string => s.ports.map((ports) => ports.length).join(' ');
      const samePorts = (a: Sample, b: Sample): string | undefined => {
        for (let i = 0; i < names.length; i++) {
          if (sameList(a.ports[i]!, b.ports[i]!)) continue;
          const gone = a.ports[i]!.filter((port) => !b.ports[i]!.includes(port)).length;
          const added = b.ports[i]!.filter((port) => !a.ports[i]!.includes(port)).length;
          return `${names[i]}: ${gone} connection(s) gone, ${added} new`;
        }
        return undefined;
      };
      const sameKeys = (a: Sample, b: Sample, ids: readonly string[]): string | undefined => {
        for (const id of ids) {
          if (pathOf.get(id) !== 'pool') continue;
          const ka = poolKeys(a.clients.get(id));
          const kb = poolKeys(b.clients.get(id));
          if (!sameList(ka, kb)) return `${id}: ${show(ka)} → ${show(kb)}`;
        }
        return undefined;
      };
      /** Per client of `ids`: pools' keys in the last sample; channels' backends that answered over the samples. */
      const observedSubsets = (samples: readonly Sample[], ids: readonly string[]): Map<string, number[]> =>
        new Map(ids.map((id) => [id, pathOf.get(id) === 'pool' ? poolKeys(samples[samples.length - 1]!.clients.get(id)) : answeredBetween(id, samples[0]!, samples[samples.length - 1]!)]));
      const smallestView = (samples: readonly Sample[], ids: readonly string[]): number =>
        Math.min(...samples.map((s) => Math.min(...ids.filter((id) => pathOf.get(id) === 'pool').map((id) => s.clients.get(id)?.subset?.coordination?.clients ?? 0))));

      /**
       * Samples until every pool is on its place among all the clients and every backend holds
       * N × its subsets connections, for STABLE_MILLIS (an etcd:/// channel's dropped keys keep
       * their connections up to the subchannel sweep's 10 s). Throws after `limitMillis`.
       */
      const want1 = expected(allIds);
      const counts1Want = countsOf(want1.values());
      const settle = async (from: number, limitMillis: number): Promise<{ samples: Sample[]; settledAt: number; reasons: Reasons }> => {
        let since: number | undefined;
        const reasons = new Reasons();
        const samples = await observe(200, false, (s) => {
          const why = poolsOff(s, allIds, want1) ?? connsOff(s, counts1Want);
          reasons.note(s.at - from, why);
          since = why === undefined ? (since ?? s.at) : undefined;
          if (since !== undefined && s.at - since >= STABLE_MILLIS) return true;
          if (s.at - from > limitMillis) throw new Error(`the ${p.clients} clients did not settle on their places within ${limitMillis / 1000} s: ${why}; on the way: ${reasons.line()}`);
          return false;
        });
        return { samples, settledAt: since!, reasons };
      };

      // ── 0. start: every client places itself ──────────────────────────────────
      const startup = await settle(t0, 40_000);
      const startupCalls = callsBetween(allIds, { at: t0, ports: [], clients: new Map() }, startup.samples[startup.samples.length - 1]!);
      context.log(`start: ${p.clients} clients settled ${ms(startup.settledAt - t0)} after they were opened; ${startupCalls.ok} calls meanwhile, ${startupCalls.detail}; connections per backend ${connsLine(startup.samples[startup.samples.length - 1]!)}`);
      context.log(`  on the way (ms from the start: what was not settled yet): ${startup.reasons.line()}`);

      // ── 1. steady ─────────────────────────────────────────────────────────────
      const steadyStart = performance.now();
      const steady = await observe(SAMPLE_MILLIS, false, (s) => s.at - steadyStart >= p.steadyMillis);
      const [lo, hi] = bounds(p.clients);
      const seen1 = observedSubsets(steady, allIds);
      const counts1 = countsOf(seen1.values());
      const offPlace1 = allIds.filter((id) => !sameList(seen1.get(id)!, want1.get(id)!));
      const offConns1 = steady.filter((s) => connsOff(s, counts1) !== undefined);
      const keysMoved1 = steady.map((s) => sameKeys(steady[0]!, s, allIds)).find((d) => d !== undefined);
      const portsMoved1 = steady.map((s) => samePorts(steady[0]!, s)).find((d) => d !== undefined);
      const calls1 = callsBetween(allIds, steady[0]!, steady[steady.length - 1]!);
      const conns1 = connsLine(steady[steady.length - 1]!);
      const extra1 = Math.max(...[...steady[steady.length - 1]!.clients.values()].map((c) => c.extra ?? 0));
      context.log(`steady: subsets per backend ${counts1.join(' ')} (bounds ${lo}..${hi}); connections per backend ${conns1} (N = ${p.anchors}); ${calls1.ok} calls, ${calls1.detail}`);

      // ── 2. etcd down ──────────────────────────────────────────────────────────
      const baseline = steady[steady.length - 1]!;
      const registeredBefore = await listClients();
      if (registeredBefore === undefined || registeredBefore.size !== p.clients) throw new Error(`before the outage etcd lists ${registeredBefore?.size ?? 'no'} client keys, not ${p.clients}`);
      context.log(`killing etcd for ${p.outageMillis / 1000} s (TTL ${p.ttlSeconds} s)`);
      const downAt = performance.now();
      await member.kill('SIGKILL');
      const outage = await observe(SAMPLE_MILLIS, false, (s) => s.at - downAt >= p.outageMillis);
      const portsMoved2 = outage.map((s) => samePorts(baseline, s)).filter((d) => d !== undefined);
      const keysMoved2 = outage.map((s) => sameKeys(baseline, s, allIds)).filter((d) => d !== undefined);
      const seen2 = observedSubsets([baseline, ...outage], allIds);
      const channelMoved2 = allIds.filter((id) => pathOf.get(id) === 'channel' && !sameList(seen2.get(id)!, seen1.get(id)!));
      const calls2 = callsBetween(allIds, baseline, outage[outage.length - 1]!);
      const sawDisconnected = outage.some((s) => pools.some((id) => s.clients.get(id)!.etcdConnected === false));
      const unregistered = Math.max(...outage.map((s) => pools.filter((id) => s.clients.get(id)!.subset?.coordination?.registered === false).length));
      const viewDips2 = smallestView(outage, allIds);
      context.log(
        `etcd down: connections per backend ${connsLine(outage[outage.length - 1]!)}; ${portsMoved2.length} of ${outage.length} samples with a connection changed; pools whose registration was down at once: up to ${unregistered} of ${pools.length}; smallest client count a pool saw ${viewDips2}; ${calls2.ok} calls, ${calls2.detail}`,
      );

      // ── 3. etcd back ──────────────────────────────────────────────────────────
      const upStarted = performance.now();
      await member.start();
      const upAt = performance.now();
      context.log(`etcd back (restarted in ${ms(upAt - upStarted)})${process.env['SUBSET_CLIENTS_LOG'] ? ` at ${Date.now()}` : ''}`);
      let reRegisteredAt: number | undefined;
      const onNewLease = (listing: ReadonlyMap<string, Registered>): number => allIds.filter((id) => listing.has(id) && listing.get(id)!.lease !== registeredBefore.get(id)!.lease).length;
      const back = await observe(SAMPLE_MILLIS, true, (s) => {
        const poolsRegistered = pools.every((id) => s.clients.get(id)!.subset?.coordination?.registered === true);
        // Every client's key listed again once etcd answers (on its old lease, or claimed again on a new one).
        if (reRegisteredAt === undefined && poolsRegistered && s.listing !== undefined && s.listing.size === p.clients) reRegisteredAt = s.at;
        if (s.at - upAt > 30_000) return true;
        return reRegisteredAt !== undefined && s.at - reRegisteredAt >= p.afterRestartMillis / 2 && s.at - upAt >= p.afterRestartMillis;
      });
      const registeredAfter = (await listClients()) ?? new Map<string, Registered>();
      const lapsed = allIds.filter((id) => registeredAfter.get(id)?.created !== registeredBefore.get(id)!.created);
      const missingAt = (id: string): number | undefined => back.find((s) => s.listing !== undefined && !s.listing.has(id))?.at;
      const portsMoved3 = back.map((s) => samePorts(baseline, s)).filter((d) => d !== undefined);
      const keysMoved3 = back.map((s) => sameKeys(baseline, s, allIds)).filter((d) => d !== undefined);
      const seen3 = observedSubsets(back, allIds);
      const channelMoved3 = allIds.filter((id) => pathOf.get(id) === 'channel' && !sameList(seen3.get(id)!, seen1.get(id)!));
      const calls3 = callsBetween(allIds, outage[outage.length - 1]!, back[back.length - 1]!);
      const viewDips3 = smallestView(back, allIds);
      const lapsedLine = lapsed.length === 0 ? 'none' : lapsed.map((id) => `${id} (${pathOf.get(id)}; gone from the listing ${ms(missingAt(id) === undefined ? undefined : missingAt(id)! - upAt)} after the restart)`).join(', ');
      context.log(
        `etcd back: every client's key listed ${ms(reRegisteredAt === undefined ? undefined : reRegisteredAt - upAt)} after the restart (${onNewLease(registeredAfter)} of ${p.clients} on another lease than before the outage at the end); keys that lapsed meanwhile: ${lapsedLine}; watched ${ms(back[back.length - 1]!.at - upAt)}; connections per backend ${connsLine(back[back.length - 1]!)}; ${portsMoved3.length} of ${back.length} samples with a connection changed; smallest client count a pool saw ${viewDips3}; ${calls3.ok} calls, ${calls3.detail}`,
      );

      // ── 4. half the clients SIGKILLed ────────────────────────────────────────
      // From the steady state again, whatever phase 3 moved.
      const settleFrom = performance.now();
      const resettled = await settle(settleFrom, 30_000);
      const beforeKill = resettled.samples[resettled.samples.length - 1]!;
      const callsResettle = callsBetween(allIds, back[back.length - 1]!, beforeKill);
      context.log(`before the kill: every client on its place among ${p.clients} and every backend at N × its subsets again ${ms(resettled.settledAt - settleFrom)} after phase 3 (${ms(resettled.settledAt - upAt)} after etcd's restart); connections per backend ${connsLine(beforeKill)}; ${callsResettle.ok} calls meanwhile, ${callsResettle.detail}`);
      const want4 = expected(survivorIds);
      const counts4 = countsOf(want4.values());
      const [lo4, hi4] = bounds(survivorIds.length);
      context.log(`SIGKILL of client process B (${deadIds.join(' ')}); the survivors' places will give ${survivorIds.map((id) => `${id} ${show(want4.get(id)!)}`).join(', ')}`);
      const killAt = performance.now();
      if (process.env['SUBSET_CLIENTS_LOG']) context.log(`kill at ${Date.now()}`);
      await procB.kill();
      const killedIn = performance.now() - killAt;
      const deathReasons = new Reasons();
      let placedSince: number | undefined;
      let balancedSince: number | undefined;
      const deadline = killAt + connsBar + 2000;
      const death = await observe(FAST_SAMPLE_MILLIS, true, (s, all) => {
        const placed = poolsOff(s, survivorIds, want4) ?? channelsOff(all, all.length - 1, survivorIds, want4, beforeKill);
        const why = placed ?? connsOff(s, counts4);
        deathReasons.note(s.at - killAt, why);
        placedSince = placed === undefined ? (placedSince ?? s.at) : undefined;
        balancedSince = why === undefined ? (balancedSince ?? s.at) : undefined;
        return (balancedSince !== undefined && s.at - balancedSince >= p.afterBalancedMillis) || s.at >= deadline;
      });
      const after = (t: number | undefined): number | undefined => (t === undefined ? undefined : t - killAt);
      // Covered: every backend holds a connection from here on (the dead process's closed with it), and answered survivors' calls in one window.
      const coveredConns = holdsFrom(death, (i) => death[i]!.ports.every((ports) => ports.length > 0));
      let coveredCalls: number | undefined;
      for (let i = 0; i < death.length && coveredCalls === undefined; i++) {
        const answered = new Set(survivorIds.flatMap((id) => answeredBetween(id, i === 0 ? beforeKill : death[i - 1]!, death[i]!)));
        if (answered.size === names.length) coveredCalls = death[i]!.at;
      }
      const covered = coveredConns === undefined || coveredCalls === undefined ? undefined : Math.max(coveredConns, coveredCalls);
      const uncovered = names.filter((_, i) => death[0]!.ports[i]!.length === 0);
      const placed = holdsFrom(death, (i) => poolsOff(death[i]!, survivorIds, want4) === undefined && channelsOff(death, i, survivorIds, want4, beforeKill) === undefined);
      const connsBalanced = holdsFrom(death, (i) => connsOff(death[i]!, counts4) === undefined);
      const viewAt = death.find((s) => survivingPools.every((id) => s.clients.get(id)?.subset?.coordination?.clients === survivorIds.length))?.at;
      const goneAt = (id: string): number | undefined => death.find((s) => s.listing !== undefined && !s.listing.has(id))?.at;
      const deadGone = deadIds.map(goneAt).filter((t) => t !== undefined);
      const firstGone = deadGone.length === 0 ? undefined : Math.min(...deadGone);
      const lastGone = deadGone.length === deadIds.length ? Math.max(...deadGone) : undefined;
      const survivorsGone = survivorIds.filter((id) => goneAt(id) !== undefined);
      const listed = death.filter((s) => s.listing !== undefined).length;
      const tailFrom = balancedSince ?? placedSince;
      const tail = tailFrom !== undefined && death.filter((s) => s.at >= tailFrom).length >= 2 ? death.filter((s) => s.at >= tailFrom) : death.slice(-Math.max(2, Math.round(STABLE_MILLIS / FAST_SAMPLE_MILLIS)));
      const seen4 = observedSubsets(tail, survivorIds);
      const seenCounts4 = countsOf(seen4.values());
      const last4 = death[death.length - 1]!;
      const calls4 = callsBetween(survivorIds, beforeKill, last4);
      // Moves on the way: how often each surviving pool's keys changed.
      const moves = survivingPools.map((id) => {
        let n = 0;
        for (let i = 1; i < death.length; i++) if (!sameList(poolKeys(death[i - 1]!.clients.get(id)), poolKeys(death[i]!.clients.get(id)))) n += 1;
        return n;
      });
      const timeline =
        `kill → process gone ${ms(killedIn)}; the dead keys gone from etcd (100 ms listings) from ${ms(after(firstGone))} to ${ms(after(lastGone))} (${deadGone.length} of ${deadIds.length}); ` +
        `every surviving pool sees ${survivorIds.length} clients ${ms(after(viewAt))}; every backend covered ${ms(after(covered))}; every survivor on its new place ${ms(after(placed))}; connections at N × subsets ${ms(after(connsBalanced))}`;
      context.log(`half the clients killed: ${timeline}`);
      context.log(`  right after the kill (+${ms(death[0]!.at - killAt)}): connections per backend ${connsLine(death[0]!)}; uncovered ${uncovered.join(' ') || 'none'}`);
      context.log(`  on the way (ms from the kill: what was not balanced yet): ${deathReasons.line()}`);
      context.log(`  at the end: subsets per backend ${seenCounts4.join(' ')} (bounds ${lo4}..${hi4}); connections per backend ${connsLine(last4)}; surviving pools' key changes on the way ${moves.join(' ')}; survivors ${calls4.ok} calls, ${calls4.detail}`);

      await procA.ask({ type: 'stop' }, 20_000).catch((err: unknown) => context.log(`stopping client process A: ${String(err)}`));

      const checks: FaultCheck[] = [
        // 1. steady
        check(
          `steady: every backend in ⌊C·S/K⌋..⌈C·S/K⌉ = ${lo}..${hi} subsets (C ${p.clients}, S ${p.size}, K ${p.backends})`,
          counts1.every((n) => n >= lo && n <= hi),
          `subsets per backend as observed (pools' stats, channels' answering backends over ${ms(p.steadyMillis)}): ${countsLine(counts1)}`,
        ),
        check(
          `steady: every backend holds exactly N × its subsets connections (N ${p.anchors}: ${p.anchors * lo}..${p.anchors * hi}), at every sample`,
          offConns1.length === 0 && extra1 === 0,
          `connections per backend (server side) ${conns1}; ${offConns1.length} of ${steady.length} samples off${offConns1.length ? ` (first: ${connsOff(offConns1[0]!, counts1)})` : ''}; extra anchors open ${extra1}`,
        ),
        check(
          'steady: each client on the S keys the assignment gives it, none moving',
          offPlace1.length === 0 && keysMoved1 === undefined && portsMoved1 === undefined,
          `${offPlace1.length === 0 ? 'all on their places' : `off their places: ${offPlace1.map((id) => `${id} ${show(seen1.get(id)!)} (expected ${show(want1.get(id)!)})`).join(', ')}`}; keys moved: ${keysMoved1 ?? 'none'}; connections changed: ${portsMoved1 ?? 'none'}`,
        ),
        check('steady: 0 failed calls', calls1.failed === 0 && calls1.ok > 0, `${calls1.ok} calls, ${calls1.detail}`),
        // 2. etcd down
        check(
          `etcd down ${p.outageMillis / 1000} s (> 2 × TTL ${p.ttlSeconds} s): the same connections (by remote port) on every backend at every sample, every client on the same keys`,
          portsMoved2.length === 0 && keysMoved2.length === 0 && channelMoved2.length === 0,
          `${outage.length} samples; connections changed in ${portsMoved2.length}${portsMoved2.length ? ` (first: ${portsMoved2[0]})` : ''}; pools' keys changed in ${keysMoved2.length}${keysMoved2.length ? ` (first: ${keysMoved2[0]})` : ''}; channels answered by other backends: ${channelMoved2.join(' ') || 'none'}; connections per backend ${connsLine(outage[outage.length - 1]!)}; smallest client count a pool saw ${viewDips2}`,
        ),
        check('etcd down: 0 failed calls', calls2.failed === 0 && calls2.ok > 0, `${calls2.ok} calls, ${calls2.detail}`),
        check(
          'etcd down: the clients saw the outage (source disconnected) and gave up no registration (the lease is lost only when etcd says it ended)',
          sawDisconnected && unregistered === 0,
          `a pool's source reported disconnected: ${sawDisconnected}; pools whose registration was down at once: up to ${unregistered} of ${pools.length}`,
        ),
        // 3. etcd back
        check(
          `etcd back: every client keeps its key, on the lease it had (no key lapses or is claimed again: the same create revision and lease for all ${p.clients})`,
          lapsed.length === 0 && registeredAfter.size === p.clients && onNewLease(registeredAfter) === 0,
          `every client's key listed ${ms(reRegisteredAt === undefined ? undefined : reRegisteredAt - upAt)} after the restart; ${onNewLease(registeredAfter)} of ${p.clients} on another lease at the end (${registeredAfter.size} keys); lapsed and put again: ${lapsedLine}`,
        ),
        check(
          `etcd back: no subset moves (the same connections on every backend, the same keys per client, ${p.clients} clients seen throughout)`,
          portsMoved3.length === 0 && keysMoved3.length === 0 && channelMoved3.length === 0 && viewDips3 === p.clients,
          `${back.length} samples over ${ms(back[back.length - 1]!.at - upAt)} after the restart; connections changed in ${portsMoved3.length}${portsMoved3.length ? ` (first: ${portsMoved3[0]})` : ''}; pools' keys changed in ${keysMoved3.length}${keysMoved3.length ? ` (first: ${keysMoved3[0]})` : ''}; channels answered by other backends: ${channelMoved3.join(' ') || 'none'}; smallest client count a pool saw ${viewDips3}`,
        ),
        check(
          'etcd back: 0 failed calls (until the kill of phase 4)',
          calls3.failed === 0 && callsResettle.failed === 0 && calls3.ok > 0,
          `${calls3.ok} calls, ${calls3.detail}; then, waiting for the steady state before the kill, ${callsResettle.ok} calls, ${callsResettle.detail}`,
        ),
        // 4. half the clients die
        check(
          'half killed: the dead clients leave etcd when their leases end (not revoked), the survivors stay',
          lastGone !== undefined && firstGone! - killAt >= ttlMillis / 3 && survivorsGone.length === 0,
          `${deadGone.length} of ${deadIds.length} dead keys gone, the first by ${ms(after(firstGone))} after the kill (≥ TTL/3 = ${ms(ttlMillis / 3)}: not revoked), the last by ${ms(after(lastGone))}; survivors' keys gone: ${survivorsGone.join(' ') || 'none'} (${listed} of ${death.length} listings answered)`,
        ),
        check(
          `half killed: every backend covered again within one lease TTL + ${ALLOWANCE_MILLIS} ms (≤ ${bar} ms)`,
          covered !== undefined && covered - killAt <= bar,
          `${ms(after(covered))} (a connection on each from ${ms(after(coveredConns))} on, calls answered by each by ${ms(after(coveredCalls))}); uncovered right after the kill: ${uncovered.join(' ') || 'none'}; ${timeline}`,
        ),
        check(
          `half killed: every survivor on its new place within one lease TTL + ${ALLOWANCE_MILLIS} ms (≤ ${bar} ms)`,
          placed !== undefined && placed - killAt <= bar,
          `${ms(after(placed))}: every surviving pool sees ${survivorIds.length} clients and holds just the keys of its new place, every channel answered by just its new place's backends; surviving pools' key changes on the way: ${moves.join(' ')}${placed === undefined ? `; last: ${poolsOff(last4, survivorIds, want4) ?? channelsOff(death, death.length - 1, survivorIds, want4, beforeKill)}` : ''}`,
        ),
        check(
          `half killed: every backend at N × its subsets connections within one lease TTL + ${ALLOWANCE_MILLIS} ms + ${SUBCHANNEL_SWEEP_MILLIS / 1000} s (grpc-js's subchannel pool sweep on etcd:///; ≤ ${connsBar} ms)`,
          connsBalanced !== undefined && connsBalanced - killAt <= connsBar,
          `${ms(after(connsBalanced))}${connsBalanced === undefined ? `; last: ${connsOff(last4, counts4)}` : ''}; connections per backend ${connsLine(last4)}, the places give ${counts4.map((n) => n * p.anchors).join(' ')}`,
        ),
        check(
          `half killed: every backend in ⌊(C/2)·S/K⌋..⌈(C/2)·S/K⌉ = ${lo4}..${hi4} subsets and ≥ 1, each survivor on its place`,
          seenCounts4.every((n) => n >= Math.max(lo4, survivorIds.length * p.size >= p.backends ? 1 : 0) && n <= hi4) && survivorIds.every((id) => sameList(seen4.get(id)!, want4.get(id)!)),
          `subsets per backend as observed over the last ${ms(tail[tail.length - 1]!.at - tail[0]!.at)}: ${countsLine(seenCounts4)} (the places give ${counts4.join(' ')}); off their places: ${survivorIds.filter((id) => !sameList(seen4.get(id)!, want4.get(id)!)).map((id) => `${id} ${show(seen4.get(id)!)} (expected ${show(want4.get(id)!)})`).join(', ') || 'none'}`,
        ),
        check('half killed: the survivors fail no call', calls4.failed === 0 && calls4.ok > 0, `${calls4.ok} calls from the kill to the end, ${calls4.detail}`),
      ];
      return {
        id: this.id,
        title: this.title,
        figure:
          `K ${p.backends} backends × N ${p.anchors}, C ${p.clients} clients (${pools.length} pools, ${p.clients - pools.length} channels), S ${p.size}, TTL ${p.ttlSeconds} s: ` +
          `steady connections per backend ${conns1} (subsets ${lo}..${hi}), ${calls1.failed} failed; ` +
          `etcd down ${p.outageMillis / 1000} s: ${portsMoved2.length} connection changes, ${calls2.failed} failed; ` +
          `etcd back: all listed in ${ms(reRegisteredAt === undefined ? undefined : reRegisteredAt - upAt)}, ${onNewLease(registeredAfter)} on new leases, ${lapsed.length} keys lapsed, ${portsMoved3.length} samples with connection changes, ${calls3.failed} failed; ` +
          `half killed: covered in ${ms(after(covered))}, placed in ${ms(after(placed))} (bar ${bar} ms; dead keys gone ${ms(after(firstGone))}–${ms(after(lastGone))}), connections balanced in ${ms(after(connsBalanced))} (${connsLine(last4)}), ${calls4.failed} failed`,
        checks,
        settings: {
          backends: p.backends,
          anchors: p.anchors,
          clients: `${p.clients} (${pools.length} pools, ${p.clients - pools.length} etcd:/// channels), in 2 processes`,
          subsetSize: p.size,
          ttlSeconds: p.ttlSeconds,
          callersPerClient: CALLERS_PER_CLIENT,
          serverDelayMillis: SERVER_DELAY_MILLIS,
          steadyMillis: p.steadyMillis,
          outageMillis: p.outageMillis,
          allowanceMillis: ALLOWANCE_MILLIS,
          sampleMillis: `${SAMPLE_MILLIS} (${FAST_SAMPLE_MILLIS} after the kill)`,
        },
      };
    } finally {
      await rig.stop();
    }
  },
};
