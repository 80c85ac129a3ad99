// One process of the subset-coordinated fault scenario's clients (subset-coordinated.ts):
// several coordinated subsetting clients on one etcd prefix, each a pool (pool.client())
// or a plain grpc-js channel on etcd:/// (anchored_round_robin), each with its own
// closed-loop Echo callers, all sharing the process's etcd client as clients of one
// process do. The scenario SIGKILLs a whole process to kill its clients abruptly: their
// leases are not revoked and their keys stay in etcd until the leases end.
//
// Controlled over IPC:
//   start   open the clients and start their callers (answers at once; the parent polls)
//   sample  per client: its subset report (pools), its calls so far (ok, failed, and per
//           backend that answered), etcd connected or not (pools)
//   stop    stop the callers, close the channels and pools, answer, exit
// It exits when its parent goes away.
//
//   fork(build/scripts/faults/subset-clients.js)
import * as grpc from '@grpc/grpc-js';
import { type AnchorPool, consoleLogger, createPool, type Logger, type LogLevel, registerAnchorpool, silentLogger, type SubsetReport } from '../../lib/index.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';

export type ClientPath = 'pool' | 'channel';

export interface ClientSpec {
  readonly id: string;
  readonly path: ClientPath;
}

export interface StartRequest {
  readonly type: 'start';
  readonly id: number;
  readonly hosts: string[];
  readonly prefix: string;
  readonly clients: ClientSpec[];
  readonly size: number;
  readonly ttlSeconds: number;
  readonly callers: number;
  readonly deadlineMillis: number;
}

export type ClientsRequest = StartRequest | { readonly type: 'sample'; readonly id: number } | { readonly type: 'stop'; readonly id: number };

export interface ClientSample {
  readonly id: string;
  readonly path: ClientPath;
  /** Pools only: stats().subset, and whether its etcd source is connected. */
  readonly subset?: SubsetReport | undefined;
  readonly etcdConnected?: boolean;
  /** Pools only: anchors active and extra anchors open (above N). */
  readonly anchors?: number;
  readonly extra?: number;
  /** Calls finished so far: ok, failed (by status), and ok per backend name that answered. */
  readonly ok: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
  readonly examples: string[];
  readonly answered: Record<string, number>;
  /** 'error' events a pool emitted (e.g. a client id conflict). */
  readonly errors: number;
}

export type ClientsReply =
  | { readonly type: 'start'; readonly id: number; readonly error?: string }
  | { readonly type: 'sample'; readonly id: number; readonly clients: ClientSample[] }
  | { readonly type: 'stop'; readonly id: number; readonly clients: ClientSample[] };

interface Client {
  readonly spec: ClientSpec;
  readonly echo: grpc.Client;
  readonly pool: AnchorPool | undefined;
  ok: number;
  failed: number;
  readonly failures: Record<string, number>;
  readonly examples: string[];
  readonly answered: Record<string, number>;
  errors: number;
  workers: Promise<void>[];
}

const clients: Client[] = [];
/** SUBSET_CLIENTS_LOG=debug|info|warn: the clients' own logs on stderr, with the clock in ms (to read a run's timeline); silent otherwise. */
const logLevel = process.env['SUBSET_CLIENTS_LOG'] as LogLevel | undefined;
const loggerFor = (name: string): Logger => (logLevel === undefined ? silentLogger : consoleLogger(logLevel, (line) => process.stderr.write(`[${name} ${Date.now()}] ${line}\n`)));
let running = true;

async function loop(client: Client, deadlineMillis: number): Promise<void> {
  while (running) {
    try {
      const reply = await callEcho(client.echo, deadlineMillis);
      client.ok += 1;
      client.answered[reply.server] = (client.answered[reply.server] ?? 0) + 1;
    } catch (err) {
      if (!running) return;
      client.failed += 1;
      const code = (err as Partial<grpc.ServiceError>).code;
      const name = typeof code === 'number' ? (grpc.status[code] ?? String(code)) : 'no status';
      client.failures[name] = (client.failures[name] ?? 0) + 1;
      if (client.examples.length < 3) client.examples.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

function start(request: StartRequest): void {
  registerAnchorpool({ etcd: { hosts: request.hosts }, logger: loggerFor(`channels of ${process.pid}`) });
  for (const spec of request.clients) {
    const subset = { size: request.size, mode: 'coordinated' as const, clientId: spec.id, ttlSeconds: request.ttlSeconds };
    let pool: AnchorPool | undefined;
    let echo: grpc.Client;
    if (spec.path === 'pool') {
      pool = createPool({ target: `etcd:///${request.prefix}`, etcd: { hosts: request.hosts }, logger: loggerFor(spec.id), drainTimeoutMillis: 2000, subset });
      echo = pool.client(EchoClient);
    } else {
      echo = new EchoClient(`etcd:///${request.prefix}`, grpc.credentials.createInsecure(), {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { subset } }] }),
      });
    }
    const client: Client = { spec, echo, pool, ok: 0, failed: 0, failures: {}, examples: [], answered: {}, errors: 0, workers: [] };
    pool?.on('error', () => void (client.errors += 1));
    clients.push(client);
  }
  for (const client of clients) client.workers = Array.from({ length: request.callers }, () => loop(client, request.deadlineMillis));
}

function sample(): ClientSample[] {
  return clients.map((c) => {
    const stats = c.pool?.stats();
    return {
      id: c.spec.id,
      path: c.spec.path,
      ...(stats !== undefined && { subset: stats.subset, etcdConnected: stats.source.connected, anchors: stats.anchors.active, extra: stats.extraAnchors.open }),
      ok: c.ok,
      failed: c.failed,
      failures: { ...c.failures },
      examples: [...c.examples],
      answered: { ...c.answered },
      errors: c.errors,
    };
  });
}

async function stop(): Promise<ClientSample[]> {
  running = false;
  await Promise.allSettled(clients.flatMap((c) => c.workers));
  const counts = sample();
  for (const c of clients) if (c.pool === undefined) c.echo.close();
  await Promise.allSettled(clients.map((c) => c.pool?.close()));
  return counts;
}

const send = (message: ClientsReply): void => void process.send?.(message);

process.on('message', (message: ClientsRequest) => {
  switch (message.type) {
    case 'start':
      try {
        start(message);
        send({ type: 'start', id: message.id });
      } catch (err) {
        send({ type: 'start', id: message.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
      break;
    case 'sample':
      send({ type: 'sample', id: message.id, clients: sample() });
      break;
    case 'stop':
      void stop().then((counts) => {
        send({ type: 'stop', id: message.id, clients: counts });
        process.disconnect?.();
        // Whatever still holds the process (a channel's timers), it is done.
        setTimeout(() => process.exit(0), 2000).unref();
      });
      break;
  }
});
process.on('disconnect', () => {
  if (running) process.exit(1);
});
