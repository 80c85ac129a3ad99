// npm run demo: discovery end to end on a fresh machine. It starts its own etcd through
// etcd-dev (installing etcd from Debian's packages if needed and possible), registers
// backends with the real etcdctl — printing every command — and shows what anchorpool
// sees after each change, including an invalid value that is reported and ignored.
// Everything it started is stopped on success, on failure and on Ctrl-C.
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../lib/create-source.js';
import type { EndpointSource } from '../lib/source.js';
import { silentLogger } from '../lib/logger.js';
import { ensureEtcdInstalled, etcdctl, startCluster, type EtcdCluster } from '../etcd-dev/etcd-dev.mjs';

const PREFIX = 'services/echo/';
const say = (line = '') => process.stdout.write(`${line}\n`);

function show(source: EndpointSource): void {
  const { endpoints, invalid, revision } = source.snapshot();
  say(`   anchorpool sees (revision ${revision}):`);
  if (endpoints.size === 0) say('     (no endpoints)');
  for (const e of endpoints.values()) say(`     ${e.key.padEnd(22)} ${e.addr.padEnd(18)} anchors=${e.anchors}  [${e.format}]`);
  for (const r of invalid.values()) say(`     INVALID ${r.key}: ${r.reason}${r.keptPrevious ? ' (last valid value kept)' : ''}`);
}

async function step(cluster: EtcdCluster, source: EndpointSource, args: string[]): Promise<void> {
  const quoted = args.map((a) => (/[\s"{}#]/.test(a) ? `'${a}'` : a));
  say();
  say(`$ etcdctl ${quoted.join(' ')}`);
  const changed = new Promise<void>((resolve) => {
    const done = () => {
      source.off('change', done);
      source.off('invalid', done);
      resolve();
    };
    source.on('change', done);
    source.on('invalid', done);
  });
  await etcdctl(args, { endpoints: cluster.endpoints });
  await Promise.race([changed, sleep(3000)]);
  show(source);
}

async function main(): Promise<void> {
  await ensureEtcdInstalled({ log: (line) => say(`[etcd-dev] ${line}`) });
  say('Starting a dev etcd on a free loopback port…');
  const cluster = await startCluster({ members: 1 });
  let source: EndpointSource | undefined;
  const stop = async () => {
    await source?.close();
    await cluster.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    say(`etcd is at ${cluster.endpoints.join(',')}; anchorpool watches etcd:///${PREFIX}`);
    source = createSource({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
    await source.ready({ timeoutMillis: 10_000 });
    show(source);
    await step(cluster, source, ['put', `${PREFIX}b1`, '{"addr":"127.0.0.1:50051","anchors":4}']);
    await step(cluster, source, ['put', `${PREFIX}b2`, '{"Op":0,"Addr":"127.0.0.1:50052","Metadata":{"anchors":2}}']);
    await step(cluster, source, ['put', `${PREFIX}b3`, '127.0.0.1:50053#1']);
    say('\n-- an operator typo: anchors must be 1..64. anchorpool reports it and keeps b1 as it was --');
    await step(cluster, source, ['put', `${PREFIX}b1`, '{"addr":"127.0.0.1:50051","anchors":0}']);
    await step(cluster, source, ['put', `${PREFIX}b1`, '{"addr":"127.0.0.1:50051","anchors":6}']);
    await step(cluster, source, ['del', `${PREFIX}b2`]);
    say('\n-- a key outside the prefix is not picked up --');
    await step(cluster, source, ['put', 'services/echo_other/x', '127.0.0.1:50059']);
    const status = source.status();
    say(`\nstatus: connected=${status.connected} revision=${status.revision} endpoints=${status.endpoints} invalid=${status.invalid}`);
    say('Demo finished; stopping etcd.');
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
