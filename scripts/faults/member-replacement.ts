// Members that are replaced. A 3-member cluster has each of its members replaced in turn
// (`etcdctl member add` and start the new one, then `member remove` and stop the old),
// while writes go on. The pool was given only the original three addresses; it follows
// the member list (etcd.autoSyncIntervalMillis) and must follow every write to the end.
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { EtcdMember, etcdctl, freePorts, requireEtcdBinaries } from '../../etcd-dev/etcd-dev.mjs';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';

const QUIET = ['--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn'];

/** Adds a member to the cluster reached at `endpoints` and starts it; resolves once it is healthy. */
async function addMember(rig: FaultRig, dir: string, name: string, endpoints: string[]): Promise<EtcdMember> {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const added = await reconfigure(['member', 'add', name, `--peer-urls=${peerUrl}`], endpoints);
  const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added.stdout)?.[1];
  if (initialCluster === undefined) throw new Error(`etcdctl member add printed no ETCD_INITIAL_CLUSTER: ${added.stdout}`);
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const dataDir = path.join(dir, `${name}.etcd`);
  const member = new EtcdMember({
    name,
    clientPort,
    peerPort,
    dataDir,
    logFile: path.join(dir, `${name}.log`),
    bin: requireEtcdBinaries().etcd,
    args: [
      '--name', name, '--data-dir', dataDir,
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'existing',
      ...QUIET,
    ],
  });
  rig.defer(() => member.kill());
  member.spawnProcess();
  await member.waitHealthy();
  return member;
}

/**
 * A membership change, retried while etcd refuses it as "unhealthy cluster": with its
 * strict reconfiguration check, etcd takes one only when every member has been connected
 * for a while (5 s), which is not yet so right after a start or the change before.
 */
async function reconfigure(args: string[], endpoints: string[]): Promise<{ stdout: string }> {
  for (let attempt = 0; ; attempt++) {
    const result = await etcdctl(args, { endpoints, allowFail: true });
    if (result.code === 0) return result;
    if (!/unhealthy cluster/.test(result.stderr) || attempt >= 60) throw new Error(`etcdctl ${args.join(' ')} failed: ${result.stderr}`);
    await sleep(500);
  }
}

async function removeMember(member: EtcdMember, endpoints: string[]): Promise<void> {
  const { stdout } = await etcdctl(['member', 'list'], { endpoints });
  const id = stdout.split('\n').map((line) => line.split(', ')).find((fields) => fields[2] === member.name)?.[0];
  if (id === undefined) throw new Error(`${member.name} is not in the member list: ${stdout}`);
  await reconfigure(['member', 'remove', id], endpoints);
  await member.stop();
}

export const memberReplacementScenario: FaultScenario = {
  id: 'member-replacement',
  title: 'every etcd member replaced one at a time under writes: the pool, given the original addresses, follows to the end',
  async run(context) {
    const prefix = 'replace/';
    const syncMillis = 1000;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(3);
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'anchorpool-replace-'));
      rig.defer(() => fsp.rm(dir, { recursive: true, force: true }));
      const backends = await rig.backends('r1', 'r2');
      const original = cluster.hosts;
      await rig.etcdClient(cluster).put(`${prefix}seed`).value(`${backends[0]!.address}#1`);
      const pool = rig.pool({ target: `etcd:///${prefix}`, etcd: { hosts: original, autoSyncIntervalMillis: syncMillis } });
      await pool.ready();
      const resyncs: string[] = [];
      pool.on('resync', (info) => resyncs.push(info.reason));

      // The writer follows the members itself: a new client after every step.
      let members: EtcdMember[] = [...cluster.members];
      let writer = new Etcd3({ hosts: members.map((m) => m.host) });
      let written = 0;
      let failedWrites = 0;
      let writing = true;
      rig.defer(() => {
        writing = false;
        writer.close();
      });
      const writes = (async () => {
        while (writing) {
          const client = writer;
          await client
            .put(`${prefix}w${written}`)
            .value(`${backends[written % 2]!.address}#1`)
            // A put sent to a member that is going away must not hold the writer up.
            .options({ deadline: Date.now() + 2000 })
            .exec()
            .then(
              () => (written += 1),
              () => (failedWrites += 1),
            );
          await sleep(50);
        }
      })();

      const steps: string[] = [];
      for (let i = 0; i < 3; i++) {
        const old = cluster.members[i]!;
        const startedAt = performance.now();
        const fresh = await addMember(rig, dir, `n${i + 1}`, members.map((m) => m.clientUrl));
        members.push(fresh);
        await removeMember(old, members.filter((m) => m !== old).map((m) => m.clientUrl));
        members = members.filter((m) => m !== old);
        const previous = writer;
        writer = new Etcd3({ hosts: members.map((m) => m.host) });
        previous.close();
        // Let the pool's next auto-sync see the change before the next step.
        await sleep(2 * syncMillis);
        steps.push(`${old.name} → ${fresh.name} in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
        context.log(`replaced ${old.name} by ${fresh.name}; ${written} writes so far`);
      }
      // Writes go on after the last original member left: those the pool can only get from the new members.
      const writtenWhenAllReplaced = written;
      await sleep(context.short ? 3000 : 5000);
      writing = false;
      await writes;

      const originalGone = original.every((host) => !members.some((m) => m.host === host));
      const converged = await convergePool(pool, writer, prefix, 20_000);
      const bare = (host: string): string => host.replace(/^https?:\/\//, '');
      const dialled = (pool.stats().source.etcdHosts ?? []).map(bare).sort();
      const current = members.map((m) => bare(m.host)).sort();
      return {
        id: 'member-replacement',
        title: memberReplacementScenario.title,
        figure: `${steps.join('; ')}; ${written} writes (${written - writtenWhenAllReplaced} after the last original member left; ${failedWrites} retried by the writer); the pool equal to etcd ${converged.millis} ms after the last: ${describeDiff(converged.endpoints)}`,
        checks: [
          check('all three original members were replaced', originalGone, `members now: ${members.map((m) => m.name).join(', ')}`),
          check('the pool follows every write to the end', converged.agreed && pool.snapshot().endpoints.size === written + 1, `${pool.snapshot().endpoints.size} keys for ${written} writes and the seed; ${describeDiff(converged.endpoints)}`),
          check('and is connected to the new members', pool.stats().source.connected, JSON.stringify(pool.stats().source)),
          check('its status names the members it dials now, and why it listed again', dialled.join() === current.join() && resyncs.includes('members-changed'), `dials ${dialled.join(',')}, members ${current.join(',')}; resyncs: ${resyncs.join(', ')}`),
        ],
        settings: { members: 3, autoSyncIntervalMillis: syncMillis },
      };
    } finally {
      await rig.stop();
    }
  },
};
