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
import { Etcd3 } from 'etcd3';
import { freePorts, leaderOf, startCluster, type EtcdCluster } from '../../etcd-dev/etcd-dev.mjs';
import { startPeerProxy, type PeerProxy } from '../../testkit/peer-proxy.js';
import { etcdctl } from '../../etcd-dev/etcd-dev.mjs';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';
import { etcdGauge as gauge } from '../../testkit/etcd-metrics.js';

const BAR_MILLIS = 5000;

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

export const partitionScenario: FaultScenario = {
  id: 'partition',
  title: 'the etcd member carrying the watch is cut off from its peers: the pool moves to the majority',
  async run(context) {
    const prefix = 'partition/';
    const rig = new FaultRig();
    try {
      const { cluster, peerProxies, ids } = await partitionableCluster(rig);
      const backends = await rig.backends('p1', 'p2');
      const setup = rig.etcdClient(cluster);
      for (let i = 0; i < 10; i++) await setup.put(`${prefix}k${i}`).value(`${backends[i % 2]!.address}#1`);
      const pool = rig.pool({ target: `etcd:///${prefix}`, etcd: { hosts: cluster.hosts } });
      await pool.ready();
      const resyncs: string[] = [];
      pool.on('resync', (info) => resyncs.push(info.reason));

      const streams = await Promise.all(cluster.members.map((m) => gauge(m.clientUrl, 'etcd_debugging_mvcc_watch_stream_total')));
      const cut = streams.findIndex((n) => n > 0);
      if (cut === -1) throw new Error(`no member holds the pool's watch stream (streams per member: ${streams.join('/')})`);
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
        const deadline = performance.now() + 20_000;
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
        id: 'partition',
        title: partitionScenario.title,
        figure: `watch on ${wasLeader ? 'the leader' : 'a follower'}; first write after the cut (${((firstWrittenAt - cutAt) / 1000).toFixed(1)} s after it) in the pool after ${first.toFixed(0)} ms; all ${writes} writes: ${arrivals.map((a) => a.toFixed(0)).join('/')} ms; equal to the majority during the cut (${describeDiff(duringCut.endpoints)}) and ${(afterHeal.millis / 1000).toFixed(1)} s after healing (${describeDiff(afterHeal.endpoints)})`,
        checks: [
          check(`the first write after the cut reaches the pool within ${BAR_MILLIS / 1000} s`, first <= BAR_MILLIS, `${first.toFixed(0)} ms`),
          check('every later write reaches it too', arrivals.every((a) => Number.isFinite(a)), `${arrivals.filter((a) => !Number.isFinite(a)).length} of ${writes} never arrived`),
          check("the pool's state equals the majority's during the cut", duringCut.agreed, describeDiff(duringCut.endpoints)),
          check('it listed again because its member had no leader', resyncs.includes('no-leader'), `resyncs: ${resyncs.join(', ')}`),
          check('after healing it still follows', afterHeal.agreed, `${describeDiff(afterHeal.endpoints)}, ${((performance.now() - healedAt) / 1000).toFixed(1)} s after healing`),
        ],
        settings: { members: 3, writes, preVote: 'true', watchOnLeader: wasLeader ? 'yes' : 'no' },
      };
    } finally {
      await rig.stop();
    }
  },
};

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
