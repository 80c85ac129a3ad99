// A member cut off from its cluster. Three etcd members, whose peer traffic runs through
// proxies the scenario controls (each member advertises its proxy as its peer URL; the
// proxies tell the dialing member apart, testkit/peer-proxy.ts).
// The member carrying the pool's watch stream (found in the members' /metrics) is cut
// off from its peers — its client port still answers — while writes go on through the
// other two. A watch on a member without a leader would go silent; with `hasleader` on
// its calls the member cancels the watch and refuses the listing, and the pool lists
// again on a member of the majority. Bars, with the pool's default options: the first
// write after the cut reaches the pool within 5 s, its state equals the majority's, and
// after the member is let back in the pool still follows.
//
// The same through `etcd grpc-proxy` (partition-proxy), set up as the README sets up a
// fleet behind one (leaderCheckMillis 0, watchdogMillis 5 s): the member cut off is the
// one carrying the proxy's watch. etcd 3.4's proxy then goes silent for good (it neither
// honours its clients' `hasleader` nor moves its own watch off the member), so the pool
// follows only through its watchdog's resyncs. Bar: every write within 6 × watchdogMillis,
// and its state equals the majority's.
import { Etcd3 } from 'etcd3';
import { freePorts, leaderOf, startCluster, type EtcdCluster } from '../../etcd-dev/etcd-dev.mjs';
import { startPeerProxy, type PeerProxy } from '../../testkit/peer-proxy.js';
import { etcdctl } from '../../etcd-dev/etcd-dev.mjs';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultContext, type FaultResult, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';
import { etcdGauge as gauge } from '../../testkit/etcd-metrics.js';
import { startGrpcProxy } from '../../testkit/grpc-proxy.js';

const BAR_MILLIS = 5000;
/**
 * Behind the proxy the pool can only follow through its watchdog: the proxy's own watch
 * on the cut-off member goes silent, and every new watch through the proxy joins it. A
 * write then arrives after a quiet period, the probe, 2 s for the stream to deliver
 * what the probe found, and a listing whose first try may time out (dialTimeoutMillis,
 * 5 s) on the cut-off member. The bar leaves room for a second listing try.
 */
const PROXY_WATCHDOG_MILLIS = 5000;
const PROXY_BAR_MILLIS = 6 * PROXY_WATCHDOG_MILLIS;

/** Three members, each reached by its peers through a proxy in front of its peer port. */
async function partitionableCluster(rig: FaultRig): Promise<{ cluster: EtcdCluster; peerProxies: PeerProxy[]; ids: string[] }> {
  const peerPorts = await freePorts(3);
  const peerProxies: PeerProxy[] = [];
  for (const port of peerPorts) {
    const proxy = await startPeerProxy(port);
    rig.defer(() => proxy.close());
    peerProxies.push(proxy);
  }
  // Pre-vote (the default from etcd 3.5 on): the cut-off member's outgoing election
  // requests still reach the others, and without it every one would depose their leader.
  const cluster = await startCluster({ members: 3, peerPorts, peerAdvertisePorts: peerProxies.map((p) => p.port), extraArgs: ['--pre-vote=true'] });
  rig.defer(() => cluster.stop());
  // `member list` lines: "<hex id>, started, <name>, <peer url>, <client url>, false".
  const { stdout } = await etcdctl(['member', 'list'], { endpoints: cluster.endpoints });
  const idOf = new Map(stdout.trim().split('\n').map((line) => line.split(', ')).map(([id, , name]) => [name!, id!]));
  return { cluster, peerProxies, ids: cluster.members.map((m) => idOf.get(m.name)!) };
}

/** Cuts member `i` off: nothing reaches it, and nothing it dials reaches the others. */
function isolate(peerProxies: PeerProxy[], ids: string[], i: number): void {
  peerProxies[i]!.blockAll();
  peerProxies.forEach((proxy, j) => j !== i && proxy.block(ids[i]!));
}

interface PartitionSetup {
  readonly id: string;
  readonly title: string;
  /** Through one etcd grpc-proxy in front of the three members (with the leader check off), or directly. */
  readonly throughProxy: boolean;
}

function partition(setup: PartitionSetup): FaultScenario {
  return { id: setup.id, title: setup.title, run: (context) => runPartition(setup, context) };
}

export const partitionScenario = partition({
  id: 'partition',
  title: 'the etcd member carrying the watch is cut off from its peers: the pool moves to the majority',
  throughProxy: false,
});

export const partitionProxyScenario = partition({
  id: 'partition-proxy',
  title: 'the same behind etcd grpc-proxy (leader check off): the member carrying the proxy\'s watch is cut off',
  throughProxy: true,
});

async function runPartition({ id, title, throughProxy }: PartitionSetup, context: FaultContext): Promise<FaultResult> {
  const prefix = 'partition/';
  const rig = new FaultRig();
  try {
    const { cluster, peerProxies, ids } = await partitionableCluster(rig);
    const backends = await rig.backends('p1', 'p2');
    const setup = rig.etcdClient(cluster);
    for (let i = 0; i < 10; i++) await setup.put(`${prefix}k${i}`).value(`${backends[i % 2]!.address}#1`);
    let etcd: { hosts: string[]; leaderCheckMillis?: number; watchdogMillis?: number } = { hosts: cluster.hosts };
    if (throughProxy) {
      const proxy = await startGrpcProxy(cluster.hosts);
      rig.defer(() => proxy.stop());
      etcd = { hosts: [proxy.host], leaderCheckMillis: 0, watchdogMillis: PROXY_WATCHDOG_MILLIS };
    }
    // The member whose watchers grow when the pool starts carries its watch (through the
    // proxy too, which holds a watch of its own for its leader tracking, maybe elsewhere).
    const watchers = (): Promise<number[]> => Promise.all(cluster.members.map((m) => gauge(m.clientUrl, 'etcd_debugging_mvcc_watcher_total')));
    const watchersBefore = await watchers();
    const pool = rig.pool({ target: `etcd:///${prefix}`, etcd });
    await pool.ready();
    const resyncs: string[] = [];
    pool.on('resync', (info) => resyncs.push(info.reason));

    // ready() resolves after the listing; the watch is created just after it.
    let watchersAfter = await watchers();
    for (let waited = 0; watchersAfter.every((n, i) => n <= watchersBefore[i]!) && waited < 10_000; waited += 100) {
      await sleep(100);
      watchersAfter = await watchers();
    }
    const cut = watchersAfter.findIndex((n, i) => n > watchersBefore[i]!);
    if (cut === -1) throw new Error(`no member took the pool's watch (watchers per member: ${watchersBefore.join('/')} → ${watchersAfter.join('/')})`);
    const majority = cluster.members.filter((_, i) => i !== cut);
    const writer = rig.etcdClient(new Etcd3({ hosts: majority.map((m) => m.host) }));
    const wasLeader = (await leaderOf(cluster))?.name === cluster.members[cut]!.name;
    context.log(`the pool's watch is on ${cluster.members[cut]!.name}${wasLeader ? ', the leader' : ''}; cutting it off from its peers`);

    isolate(peerProxies, ids, cut);
    const cutAt = performance.now();
    // Writes go on through the majority; each one's arrival in the pool is timed.
    const arrivals: number[] = [];
    let firstWrittenAt = 0;
    const writes = context.short ? 6 : 20;
    for (let i = 0; i < writes; i++) {
      const key = `${prefix}after-cut-${i}`;
      const writtenAt = await writeWhenPossible(writer, key, `${backends[i % 2]!.address}#1`);
      if (i === 0) firstWrittenAt = writtenAt;
      const deadline = performance.now() + (throughProxy ? PROXY_BAR_MILLIS + 10_000 : 20_000);
      while (!pool.snapshot().endpoints.has(key) && performance.now() < deadline) await sleep(10);
      arrivals.push(pool.snapshot().endpoints.has(key) ? performance.now() - writtenAt : Infinity);
      context.log(`write ${i} (${((writtenAt - cutAt) / 1000).toFixed(1)} s after the cut) reached the pool in ${arrivals.at(-1)!.toFixed(0)} ms`);
      await sleep(context.short ? 200 : 500);
    }
    const duringCut = await convergePool(pool, writer, prefix, 10_000);

    for (const proxy of peerProxies) proxy.unblock();
    const healedAt = performance.now();
    await writer.put(`${prefix}after-heal`).value(`${backends[0]!.address}#2`);
    await writer.delete().key(`${prefix}k0`);
    const afterHeal = await convergePool(pool, writer, prefix, 20_000);
    const first = arrivals[0]!;
    return {
      id,
      title,
      figure: `${throughProxy ? "the proxy's " : ''}watch on ${wasLeader ? 'the leader' : 'a follower'}; first write after the cut (${((firstWrittenAt - cutAt) / 1000).toFixed(1)} s after it) in the pool after ${first.toFixed(0)} ms; all ${writes} writes: ${arrivals.map((a) => a.toFixed(0)).join('/')} ms; equal to the majority during the cut (${describeDiff(duringCut.endpoints)}) and ${(afterHeal.millis / 1000).toFixed(1)} s after healing (${describeDiff(afterHeal.endpoints)})`,
      checks: [
        // The bar is for the default options, directly; behind a proxy the time is measured, not barred.
        ...(throughProxy
          ? [check(`every write after the cut reaches the pool within ${PROXY_BAR_MILLIS / 1000} s (6 × watchdogMillis)`, arrivals.every((a) => a <= PROXY_BAR_MILLIS), `${arrivals.map((a) => a.toFixed(0)).join('/')} ms; resyncs: ${resyncs.join(', ')}`)]
          : [
              check(`the first write after the cut reaches the pool within ${BAR_MILLIS / 1000} s`, first <= BAR_MILLIS, `${first.toFixed(0)} ms`),
              // A leader that is cut off steps down and the majority elects another; the pool may then find its connection suspect first.
              ...(wasLeader ? [] : [check('it listed again because its member had no leader', resyncs.includes('no-leader'), `resyncs: ${resyncs.join(', ')}`)]),
            ]),
        check('every later write reaches it too', arrivals.every((a) => Number.isFinite(a)), `${arrivals.filter((a) => !Number.isFinite(a)).length} of ${writes} never arrived`),
        check("the pool's state equals the majority's during the cut", duringCut.agreed, describeDiff(duringCut.endpoints)),
        check('after healing it still follows', afterHeal.agreed, `${describeDiff(afterHeal.endpoints)}, ${((performance.now() - healedAt) / 1000).toFixed(1)} s after healing`),
      ],
      settings: { members: 3, writes, preVote: 'true', watchOnLeader: wasLeader ? 'yes' : 'no', path: throughProxy ? 'etcd grpc-proxy, leaderCheckMillis 0' : 'direct, default options' },
    };
  } finally {
    await rig.stop();
  }
}

/** Puts once the majority accepts writes (it may be electing a leader right after the cut); resolves with when it was written. */
async function writeWhenPossible(writer: Etcd3, key: string, value: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writer.put(key).value(value).exec();
      return performance.now();
    } catch (err) {
      if (attempt >= 50) throw err;
      await sleep(100);
    }
  }
}
