// A multi-process Echo server: a Node `cluster` primary with CLUSTER_WORKERS workers (2
// by default) that share one listening port, run as a child process by
// testkit/echo/cluster-backend.ts. Each worker binds the same address with grpc-js's own
// bindAsync (cluster shares the listening socket between workers, port 0 included: the
// first worker's random port is handed to the others) and answers Echo with
// `{ server: "worker-<id>", peer }`, so a client can tell which process served each call
// and over which connection. Which worker gets a new connection is cluster's choice:
// CLUSTER_SCHED=rr lets the primary accept and hand connections out in turn (Node's
// default on Linux), CLUSTER_SCHED=none lets every worker accept and the kernel decide.
//
// Nothing outlives the process that started it: the primary exits when its IPC channel
// to that parent closes, and kills its workers first; a worker exits when its primary
// goes away; a worker that dies takes the whole server down rather than leaving it
// half-served.
import cluster, { type Worker } from 'node:cluster';
import * as grpc from '@grpc/grpc-js';
import { echoService } from './echo-service.js';

interface ListeningMessage {
  type: 'listening';
  port: number;
}

const host = '127.0.0.1';

function runPrimary(): void {
  const workers = Number(process.env['CLUSTER_WORKERS'] ?? 2);
  // Must be chosen before the first fork; cluster freezes it then. Workers inherit our
  // environment, BACKEND_PORT included.
  cluster.schedulingPolicy = process.env['CLUSTER_SCHED'] === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;

  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    if (alive.length === 0) process.exit(code);
    let left = alive.length;
    for (const w of alive) {
      w.process.once('exit', () => {
        if (--left === 0) process.exit(code);
      });
      w.process.kill('SIGKILL');
    }
  };
  // The parent went away (or closed our IPC channel): take the workers down with us.
  process.on('disconnect', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    process.stderr.write(`cluster-server: worker ${worker.id} exited (${signal ?? code}); stopping\n`);
    stop(1);
  });

  const ports: number[] = [];
  cluster.on('message', (worker, message: ListeningMessage) => {
    if (message.type !== 'listening') return;
    ports.push(message.port);
    if (ports.length < workers) return;
    if (new Set(ports).size !== 1) {
      process.stderr.write(`cluster-server: workers listen on different ports (${ports.join(', ')})\n`);
      stop(1);
      return;
    }
    const pids = Object.values(cluster.workers ?? {}).map((w) => w!.process.pid!);
    process.send?.({ type: 'listening', port: message.port, workerPids: pids, scheduling: process.env['CLUSTER_SCHED'] === 'none' ? 'none' : 'rr' });
  });
  for (let i = 0; i < workers; i++) cluster.fork();
}

function runWorker(worker: Worker): void {
  const name = `worker-${worker.id}`;
  const server = new grpc.Server();
  // Only Echo is served; the other methods answer UNIMPLEMENTED, which no caller here uses.
  server.addService(
    { echo: echoService.echo },
    {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
        callback(null, Buffer.from(JSON.stringify({ server: name, peer: call.getPeer() }))),
    },
  );
  const port = Number(process.env['BACKEND_PORT'] ?? 0);
  server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
    if (err) {
      process.stderr.write(`cluster-server ${name}: ${err.message}\n`);
      process.exit(1);
    }
    process.send?.({ type: 'listening', port: bound } satisfies ListeningMessage);
  });
  // The primary is gone: nobody hands us connections or will stop us later.
  process.on('disconnect', () => process.exit(0));
}

if (cluster.isPrimary) runPrimary();
else runWorker(cluster.worker!);
