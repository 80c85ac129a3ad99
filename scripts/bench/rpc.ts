// Unary RPC benchmark, one run, all contenders interleaved (A B C D E, A B C D E, …):
//   raw       pre-picked grpc-js channels, one per anchor, round robin (the baseline)
//   leases    pool.acquire() → lease.client(EchoClient) → release()
//   client    pool.client(EchoClient)
//   etcd-arr  a plain client on etcd:/// with the anchored_round_robin policy
//   grpc-rr   grpc-js's own round_robin over the same addresses (ipv4: target)
// Two backends in child processes, 2 anchors each (4 connections; round_robin gets 2).
// Reports calls/s and p50/p99 latency at 64 and 512 calls in flight, medians of the
// repetitions, and each contender's ratio to the raw baseline.
//
//   node build/scripts/bench/rpc.js [--quick] [--json]
import { parseArgs } from 'node:util';
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { createPool } from '../../lib/pool.js';
import { registerAnchorpool } from '../../lib/grpc/register.js';
import { silentLogger } from '../../lib/logger.js';
import { ensureEtcdInstalled, etcdctl, startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { Backend } from '../echo/backend.js';
import { callEcho, EchoClient } from '../echo/echo-service.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' } } });
const RUN_MILLIS = values.quick ? 1000 : 3000;
const REPEATS = 3;
const CONCURRENCY = [64, 512];
const ANCHORS = 2;

type Call = () => Promise<unknown>;
interface Sample {
  callsPerSec: number;
  p50: number;
  p99: number;
  failed: number;
}

async function measure(call: Call, inFlight: number): Promise<Sample> {
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + RUN_MILLIS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t0);
        } catch {
          failed += 1;
        }
      }
    }),
  );
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { callsPerSec: (latencies.length / elapsed) * 1000, p50: q(0.5), p99: q(0.99), failed };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  await ensureEtcdInstalled({ log: (line) => process.stderr.write(`${line}\n`) });
  const cluster = await startCluster({ members: 1 });
  const backends = [new Backend({ name: 'a' }), new Backend({ name: 'b' })];
  const closers: (() => unknown)[] = [];
  try {
    await Promise.all(backends.map((b) => b.start()));
    const insecure = grpc.credentials.createInsecure();
    for (const b of backends) await etcdctl(['put', `bench/rpc/${b.name}`, `${b.address}#${ANCHORS}`], { endpoints: cluster.endpoints });

    // raw: one channel (own connection) per anchor, picked round robin
    const raw = backends.flatMap((b) =>
      Array.from({ length: ANCHORS }, (_, i) => new EchoClient(b.address, insecure, { 'grpc.use_local_subchannel_pool': 1, 'bench.raw': i })),
    );
    closers.push(() => raw.forEach((c) => c.close()));
    let next = 0;
    const rawCall: Call = () => callEcho(raw[next++ % raw.length]!);

    const pool = createPool({ target: 'etcd:///bench/rpc/', etcd: { hosts: cluster.hosts }, logger: silentLogger, maxLeasesPerAnchor: 1000, acquireTimeoutMillis: 30_000 });
    closers.push(() => pool.close());
    await pool.ready();
    const leaseCall: Call = () => pool.use((lease) => callEcho(lease.client(EchoClient)));
    const stub = pool.client(EchoClient);
    const clientCall: Call = () => callEcho(stub);

    registerAnchorpool({ etcd: { hosts: cluster.hosts }, logger: silentLogger });
    const anchored = new EchoClient('etcd:///bench/rpc/', insecure);
    closers.push(() => anchored.close());
    const roundRobin = new EchoClient(`ipv4:${backends.map((b) => b.address).join(',')}`, insecure, {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    });
    closers.push(() => roundRobin.close());

    const contenders: Record<string, Call> = {
      raw: rawCall,
      leases: leaseCall,
      client: clientCall,
      'etcd-arr': () => callEcho(anchored),
      'grpc-rr': () => callEcho(roundRobin),
    };
    // Warm-up: every connection up and JIT-compiled paths.
    for (const call of Object.values(contenders)) await measure(call, 64).catch(() => undefined);

    const results: Record<number, Record<string, Sample[]>> = {};
    for (const inFlight of CONCURRENCY) {
      results[inFlight] = Object.fromEntries(Object.keys(contenders).map((k) => [k, [] as Sample[]]));
      for (let r = 0; r < REPEATS; r++) {
        for (const [name, call] of Object.entries(contenders)) results[inFlight]![name]!.push(await measure(call, inFlight));
      }
    }
    const connections = await Promise.all(backends.map(async (b) => ({ backend: b.name, connections: (await b.stats()).connections.length })));

    const table = Object.fromEntries(
      Object.entries(results).map(([inFlight, byName]) => {
        const base = median(byName['raw']!.map((s) => s.callsPerSec));
        return [
          inFlight,
          Object.fromEntries(
            Object.entries(byName).map(([name, samples]) => {
              const cps = median(samples.map((s) => s.callsPerSec));
              return [
                name,
                {
                  callsPerSec: cps,
                  spread: [Math.min(...samples.map((s) => s.callsPerSec)), Math.max(...samples.map((s) => s.callsPerSec))],
                  p50Ms: median(samples.map((s) => s.p50)),
                  p99Ms: median(samples.map((s) => s.p99)),
                  failed: samples.reduce((n, s) => n + s.failed, 0),
                  vsRaw: cps / base,
                },
              ];
            }),
          ),
        ];
      }),
    );
    const report = {
      machine: `${os.cpus().length} cores, node ${process.version}`,
      date: new Date().toISOString(),
      settings: { runMillis: RUN_MILLIS, repeats: REPEATS, anchorsPerBackend: ANCHORS, backends: backends.length },
      serverConnectionsAtEnd: connections,
      results: table,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const lines = [
      `unary RPC — ${report.machine}, ${report.date}`,
      `2 backends in child processes, ${ANCHORS} anchors each; ${REPEATS} interleaved runs of ${RUN_MILLIS} ms per contender; medians`,
    ];
    for (const [inFlight, byName] of Object.entries(table)) {
      lines.push('', `${inFlight} in flight     calls/s   (spread)            p50 ms   p99 ms   vs raw   failed`);
      for (const [name, s] of Object.entries(byName)) {
        lines.push(
          `  ${name.padEnd(14)} ${s.callsPerSec.toFixed(0).padStart(7)}   (${s.spread.map((x) => x.toFixed(0)).join('–').padEnd(15)})  ${s.p50Ms.toFixed(2).padStart(6)}   ${s.p99Ms.toFixed(2).padStart(6)}   ${s.vsRaw.toFixed(2)}×   ${s.failed}`,
        );
      }
    }
    lines.push('', `server-side connections at the end: ${connections.map((c) => `${c.backend}=${c.connections}`).join(' ')}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const close of closers.reverse()) await close();
    await Promise.all(backends.map((b) => b.kill()));
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
