// npm run demo: anchorpool end to end on a fresh machine. It starts its own etcd through
// etcd-dev (installing etcd from Debian's packages if needed and possible) and three real
// grpc-js backends, registers them with the real etcdctl — printing every command — and
// runs real calls through round-robin leases, showing after each change what the pool
// holds: anchors per backend, leases per anchor, and connections counted by each server.
// Everything it started is stopped on success, on failure and on Ctrl-C.
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type AnchorPool } from '../lib/pool.js';
import { silentLogger } from '../lib/logger.js';
import { ensureEtcdInstalled, etcdctl, startCluster, type EtcdCluster } from '../etcd-dev/etcd-dev.mjs';
import { Backend } from './echo/backend.js';
import { callEcho, EchoClient } from './echo/echo-service.js';

const PREFIX = 'services/echo/';
const say = (line = '') => process.stdout.write(`${line}\n`);

async function report(pool: AnchorPool, backends: Backend[], calls: number): Promise<void> {
  // A burst of real calls, one lease each, counted per key and anchor.
  const perAnchor = new Map<string, number>();
  for (let i = 0; i < calls; i++) {
    await pool.use(async (lease) => {
      await callEcho(lease.client(EchoClient));
      const slot = `${lease.key}#${lease.anchor}`;
      perAnchor.set(slot, (perAnchor.get(slot) ?? 0) + 1);
    });
  }
  const stats = pool.stats();
  say(`   pool: ${stats.endpoints} endpoint(s), ${stats.anchors.active} anchor(s) (${stats.anchors.byState.READY} READY, ${stats.anchors.draining} draining)${stats.invalid.length ? `, invalid: ${stats.invalid.map((i) => `${i.key} (${i.reason})`).join('; ')}` : ''}`);
  say(`   ${calls} calls through leases, per anchor:`);
  for (const [slot, n] of [...perAnchor].sort()) say(`     ${slot.padEnd(22)} ${'#'.repeat(Math.round(n / 4)).padEnd(20)} ${n}`);
  const connections = await Promise.all(backends.filter((b) => b.running).map(async (b) => `${b.name}=${(await b.stats()).connections.length}`));
  say(`   connections counted by the servers: ${connections.join('  ')}`);
}

async function step(cluster: EtcdCluster, pool: AnchorPool, backends: Backend[], args: string[]): Promise<void> {
  const quoted = args.map((a) => (/[\s"{}#]/.test(a) ? `'${a}'` : a));
  say();
  say(`$ etcdctl ${quoted.join(' ')}`);
  await etcdctl(args, { endpoints: cluster.endpoints });
  await sleep(600); // the watch event, reconcile, and new connections becoming READY
  await report(pool, backends, 60);
}

async function main(): Promise<void> {
  await ensureEtcdInstalled({ log: (line) => say(`[etcd-dev] ${line}`) });
  say('Starting a dev etcd on a free loopback port and three grpc-js echo backends…');
  const cluster = await startCluster({ members: 1 });
  const backends = ['alpha', 'beta', 'gamma'].map((name) => new Backend({ name }));
  let pool: AnchorPool | undefined;
  const stop = async () => {
    await pool?.close();
    await Promise.all(backends.map((b) => b.kill()));
    await cluster.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    await Promise.all(backends.map((b) => b.start()));
    const [alpha, beta, gamma] = backends as [Backend, Backend, Backend];
    say(`etcd at ${cluster.endpoints.join(',')}; backends at ${backends.map((b) => `${b.name} ${b.address}`).join(', ')}`);
    await etcdctl(['put', `${PREFIX}alpha`, JSON.stringify({ addr: alpha.address, anchors: 3 })], { endpoints: cluster.endpoints });
    say(`$ etcdctl put ${PREFIX}alpha '{"addr":"${alpha.address}","anchors":3}'`);
    pool = createPool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
    await pool.ready();
    await sleep(300);
    say(`anchorpool watches etcd:///${PREFIX}`);
    await report(pool, backends, 60);
    await step(cluster, pool, backends, ['put', `${PREFIX}beta`, `{"Op":0,"Addr":"${beta.address}","Metadata":{"anchors":1}}`]);
    await step(cluster, pool, backends, ['put', `${PREFIX}gamma`, `${gamma.address}#2`]);
    say('\n-- an operator typo (anchors must be 1..64): reported, and alpha keeps its 3 anchors --');
    await step(cluster, pool, backends, ['put', `${PREFIX}alpha`, `{"addr":"${alpha.address}","anchors":0}`]);
    say('\n-- alpha grows to 5 anchors: its 3 connections stay, 2 are added --');
    await step(cluster, pool, backends, ['put', `${PREFIX}alpha`, `{"addr":"${alpha.address}","anchors":5}`]);
    say('\n-- beta is removed: its anchor drains and its connection closes --');
    await step(cluster, pool, backends, ['del', `${PREFIX}beta`]);
    say('\nDemo finished; stopping the pool, the backends and etcd.');
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
