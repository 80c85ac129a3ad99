// What a fault scenario starts — etcd members, TCP proxies, echo backends, etcd clients,
// pools — registered as it is started and stopped by one stop(), last started first,
// whether the scenario passed, missed or threw.
import { Etcd3 } from 'etcd3';
import { type AnchorPool, createPool, type PoolOptions } from '../../lib/index.js';
import { startCluster, type EtcdCluster, type EtcdMember } from '../../etcd-dev/etcd-dev.mjs';
import { startTcpProxy, type TcpProxy } from '../../testkit/tcp-proxy.js';
import { Backend } from '../../testkit/echo/backend.js';
import * as grpc from '@grpc/grpc-js';
import { registerAnchorpool } from '../../lib/native/index.js';
import { EchoClient } from '../../testkit/echo/echo-service.js';

export class FaultRig {
  readonly #undo: (() => unknown)[] = [];

  /** Runs `fn` at stop(), before everything registered earlier. */
  defer(fn: () => unknown): void {
    this.#undo.push(fn);
  }

  async etcd(members: 1 | 3): Promise<EtcdCluster> {
    const cluster = await startCluster({ members });
    this.defer(() => cluster.stop());
    return cluster;
  }

  async proxy(member: EtcdMember): Promise<TcpProxy> {
    const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: member.clientPort });
    this.defer(() => proxy.close());
    return proxy;
  }

  /** Echo backends in child processes, one per name, started together. */
  async backends(...names: string[]): Promise<Backend[]> {
    const backends = names.map((name) => new Backend({ name }));
    // Registered before start(): one that started before another failed is still killed.
    this.defer(() => Promise.all(backends.map((b) => b.kill())));
    await Promise.all(backends.map((b) => b.start()));
    return backends;
  }

  etcdClient(client: Etcd3 | EtcdCluster): Etcd3 {
    const etcd = client instanceof Etcd3 ? client : new Etcd3({ hosts: client.hosts });
    this.defer(() => etcd.close());
    return etcd;
  }

  pool(options: PoolOptions): AnchorPool {
    const pool = createPool(options);
    this.defer(() => pool.close());
    return pool;
  }

  /**
   * A plain grpc-js Echo client on `etcd:///prefix` through anchored_round_robin with these
   * policy options, closed at stop(); resolves once it is READY (within 10 s).
   */
  async nativeClient(cluster: EtcdCluster, prefix: string, policy: object = {}): Promise<EchoClient> {
    registerAnchorpool({ etcd: { hosts: cluster.hosts } });
    const client = new EchoClient(`etcd:///${prefix}`, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: policy }] }),
    });
    this.defer(() => client.close());
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
    return client;
  }

  /** Stops everything, last started first; one failing step does not keep the others running. */
  async stop(): Promise<void> {
    for (let fn = this.#undo.pop(); fn !== undefined; fn = this.#undo.pop()) {
      try {
        await fn();
      } catch {
        // keep stopping the rest
      }
    }
  }
}
