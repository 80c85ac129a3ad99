// One process of the subsetting benchmark's clients (subsetting.ts): many pools in one
// process on the same prefix, sharing one etcd client as pools of one process do. Each
// pool is one simulated client, with its own subset (or none). Controlled over IPC:
//   open     more pools, with the given client ids and subset option
//   census   what the pools hold: per key, how many pools keep it in their subset as
//            chosen; keys leaving or failed; anchors READY and draining; coordinated
//            pools' places among the clients
//   subsets  per pool: the keys it keeps as chosen, and its place among the clients
//   round    every pool makes exactly `calls` Echo calls through pool.client(), paced
//            over `millis` from a random phase; answers when all have finished
//   load     from now on, every pool calls Echo through pool.client() at a steady rate
//   calls    the calls finished so far, ok and failed (with the first errors' messages)
//   close    stops the load and closes every pool
// It exits when its parent goes away.
//
//   fork(build/scripts/bench/subsetting-clients.js, [etcd host,…, prefix])
import type * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import { type AnchorPool, createPool, type LogFields, type Logger } from '../../lib/index.js';
import type { SubsetOptions } from '../../lib/index.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';

export interface Census {
  readonly pools: number;
  /** Per key: the pools that keep anchors to it as part of their subset (every pool without subsetting). */
  readonly keys: Record<string, number>;
  /** Keys kept only until their replacement serves, and keys kept while failed, summed over the pools. */
  readonly leaving: number;
  readonly failed: number;
  /** Pools whose subset does not have exactly `size` chosen keys (or every key, with fewer). */
  readonly offSize: number;
  readonly ready: number;
  readonly draining: number;
  /** 'error' events the pools emitted. */
  readonly errors: number;
  /** Since the pools started: connections their liveness check dropped as silent, and connection attempts given up at connectTimeoutMillis. */
  readonly frozen: number;
  readonly connectTimeouts: number;
  /** Pools by the number of keys discovery offers them (a fleet that agrees has one entry: every key registered). */
  readonly offered: Record<string, number>;
  /** Coordinated pools without a place yet, not registered in etcd, or in conflict over their id. */
  readonly unplaced: number;
  /** Coordinated pools by the client count their place says (a fleet that agrees has one entry). */
  readonly views: Record<string, number>;
  /** The pools' warnings and errors logged since they started, by message: how often, and the first one's error field. */
  readonly logged: Record<string, { count: number; example: string }>;
  /** The most file descriptors this process had open at any census so far (its limit is 20,000). */
  readonly peakDescriptors: number;
  readonly rss: number;
}

/** One pool's subset as it stands: the keys it keeps as chosen (every key without subsetting), and its place when coordinated. */
export interface PoolSubset {
  readonly keys: string[];
  readonly rank?: number;
  readonly clients?: number;
}

export interface CallCounts {
  readonly ok: number;
  readonly failed: number;
  /** The first errors' messages, with how often each was seen. */
  readonly errors: Record<string, number>;
}

export type ClientsRequest =
  | { type: 'open'; id: number; clientIds: string[]; subset: SubsetOptions | null }
  | { type: 'census'; id: number }
  | { type: 'subsets'; id: number }
  | { type: 'round'; id: number; calls: number; millis: number; deadlineMillis: number }
  | { type: 'load'; id: number; callsPerSecond: number; deadlineMillis: number }
  | { type: 'calls'; id: number }
  | { type: 'close'; id: number };

const [hosts, prefix] = process.argv.slice(2) as [string, string];

interface Client {
  readonly id: string;
  readonly pool: AnchorPool;
  readonly echo: grpc.Client;
  timer?: NodeJS.Timeout;
}

const clients: Client[] = [];
let load: { callsPerSecond: number; deadlineMillis: number } | undefined;
let poolErrors = 0;
let peakDescriptors = 0;
const calls = { ok: 0, failed: 0, errors: {} as Record<string, number> };
const logged: Record<string, { count: number; example: string }> = {};

/** Counts the pools' warnings and errors (a registration retried, a lease lost), which the fleet's figures alone would not show. */
function count(fields: LogFields, raw: string): void {
  // One entry per kind of message: the anchor and the address it names vary.
  const message = raw.replace(/anchor \S+#\d+/g, 'anchor KEY#i').replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDRESS');
  const seen = logged[message];
  if (seen !== undefined) seen.count += 1;
  else if (Object.keys(logged).length < 20) logged[message] = { count: 1, example: String(fields['error'] ?? '').slice(0, 200) };
}
const logger: Logger = { debug: () => undefined, info: () => undefined, warn: count, error: count };

/** One Echo call, counted. */
function call(client: Client, deadlineMillis: number): Promise<void> {
  return callEcho(client.echo, deadlineMillis).then(
    () => void (calls.ok += 1),
    (err: unknown) => {
      calls.failed += 1;
      const message = err instanceof Error ? err.message : String(err);
      if (message in calls.errors || Object.keys(calls.errors).length < 5) calls.errors[message] = (calls.errors[message] ?? 0) + 1;
    },
  );
}

/**
 * `count` calls per pool, the i-th at phase + i × millis / count (a random phase per
 * pool): a pool's pick goes round its anchors, so a round of as many calls as it has
 * anchors puts exactly one on each, however late the timers run.
 */
async function round(count: number, millis: number, deadlineMillis: number): Promise<void> {
  const gap = millis / count;
  await Promise.all(
    clients.map(async (client) => {
      const started = performance.now() + Math.random() * gap;
      const running: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const wait = started + i * gap - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        running.push(call(client, deadlineMillis));
      }
      await Promise.all(running);
    }),
  );
}

function startLoad(client: Client): void {
  if (load === undefined || client.timer !== undefined) return;
  const { callsPerSecond, deadlineMillis } = load;
  const period = 1000 / callsPerSecond;
  const once = () => void call(client, deadlineMillis);
  // A random phase, so the pools' calls spread over the period instead of coming together.
  client.timer = setTimeout(() => {
    once();
    client.timer = setInterval(once, period);
  }, Math.random() * period);
}

function open(clientIds: readonly string[], subset: SubsetOptions | null): void {
  for (const clientId of clientIds) {
    const pool = createPool({
      target: `etcd:///${prefix}`,
      etcd: { hosts: hosts.split(',') },
      logger,
      ...(subset !== null && { subset: { ...subset, clientId } }),
    });
    pool.on('error', () => void (poolErrors += 1));
    const client: Client = { id: clientId, pool, echo: pool.client(EchoClient) };
    clients.push(client);
    startLoad(client);
  }
}

function census(): Census {
  peakDescriptors = Math.max(peakDescriptors, fs.readdirSync('/proc/self/fd').length);
  const keys: Record<string, number> = {};
  let leaving = 0;
  let failed = 0;
  let offSize = 0;
  let ready = 0;
  let draining = 0;
  let frozen = 0;
  let connectTimeouts = 0;
  let unplaced = 0;
  const views: Record<string, number> = {};
  const offered: Record<string, number> = {};
  for (const { pool } of clients) {
    const stats = pool.stats();
    const endpoints = pool.snapshot().endpoints.size;
    offered[endpoints] = (offered[endpoints] ?? 0) + 1;
    frozen += stats.liveness.frozen;
    connectTimeouts += stats.liveness.connectTimeouts;
    ready += stats.anchors.byState.READY;
    draining += stats.anchors.draining;
    const subset = stats.subset;
    if (subset === undefined) {
      for (const key of pool.snapshot().endpoints.keys()) keys[key] = (keys[key] ?? 0) + 1;
      continue;
    }
    let chosen = 0;
    for (const { key, why } of subset.keys) {
      if (why === 'chosen') {
        chosen += 1;
        keys[key] = (keys[key] ?? 0) + 1;
      } else if (why === 'failed, kept to see it return') failed += 1;
      else leaving += 1;
    }
    if (chosen !== Math.min(subset.size, subset.offered)) offSize += 1;
    if (subset.mode !== 'coordinated') continue;
    const place = subset.coordination;
    if (place === undefined || !place.registered || place.conflict !== undefined) unplaced += 1;
    else views[place.clients] = (views[place.clients] ?? 0) + 1;
  }
  return { pools: clients.length, keys, leaving, failed, offSize, ready, draining, errors: poolErrors, frozen, connectTimeouts, offered, unplaced, views, logged, peakDescriptors, rss: process.memoryUsage().rss };
}

function subsets(): Record<string, PoolSubset> {
  const all: Record<string, PoolSubset> = {};
  for (const { id, pool } of clients) {
    const subset = pool.stats().subset;
    if (subset === undefined) {
      all[id] = { keys: [...pool.snapshot().endpoints.keys()] };
      continue;
    }
    const place = subset.coordination;
    all[id] = { keys: subset.keys.filter((k) => k.why === 'chosen').map((k) => k.key), ...(place !== undefined && { rank: place.rank, clients: place.clients }) };
  }
  return all;
}

const send = (message: object): void => void process.send?.(message);

process.on('message', (message: ClientsRequest) => {
  switch (message.type) {
    case 'open':
      open(message.clientIds, message.subset);
      send({ type: 'open', id: message.id });
      break;
    case 'census':
      send({ type: 'census', id: message.id, census: census() });
      break;
    case 'subsets':
      send({ type: 'subsets', id: message.id, subsets: subsets() });
      break;
    case 'round':
      void round(message.calls, message.millis, message.deadlineMillis).then(() => send({ type: 'round', id: message.id }));
      break;
    case 'load':
      load = { callsPerSecond: message.callsPerSecond, deadlineMillis: message.deadlineMillis };
      for (const client of clients) startLoad(client);
      send({ type: 'load', id: message.id });
      break;
    case 'calls':
      send({ type: 'calls', id: message.id, calls: { ok: calls.ok, failed: calls.failed, errors: { ...calls.errors } } satisfies CallCounts });
      break;
    case 'close':
      load = undefined;
      for (const client of clients) {
        clearTimeout(client.timer);
        clearInterval(client.timer);
      }
      void Promise.all(clients.map((c) => c.pool.close())).then(() => {
        // The calls still running when the load stopped have finished by now.
        send({ type: 'close', id: message.id, calls: { ok: calls.ok, failed: calls.failed, errors: { ...calls.errors } } });
      });
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'started' });
