// A proxy in front of one etcd member's peer port that can tell its peers apart. etcd
// peers send raft messages over connections the *receiver* dials (its stream readers dial
// the sender), so cutting a member off takes more than refusing what arrives at it: the
// connections it dials to the others must go too. Every peer request names its sender in
// the `X-Server-From` header (a member ID in hex); this proxy reads it from the first
// request on a connection and refuses, or resets, the senders it is told to block.
import net from 'node:net';

export interface PeerProxy {
  readonly port: number;
  /** Refuses and resets every connection from the member `id` (hex, as etcdctl member list shows it). */
  block(id: string): void;
  /** Refuses and resets every connection, whoever dials (the member behind it is cut off). */
  blockAll(): void;
  /** Lets everyone through again. */
  unblock(): void;
  close(): Promise<void>;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

export async function startPeerProxy(targetPort: number): Promise<PeerProxy> {
  const blocked = new Set<string>();
  let all = false;
  const live = new Map<net.Socket, { from: string | undefined; upstream: net.Socket }>();
  const drop = (client: net.Socket): void => {
    const pair = live.get(client);
    live.delete(client);
    client.destroy();
    pair?.upstream.destroy();
  };
  const refused = (from: string | undefined): boolean => all || (from !== undefined && blocked.has(from));

  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    if (all) {
      client.destroy();
      return;
    }
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.indexOf(HEADER_END) === -1 && head.length < MAX_HEADER_BYTES) return;
      client.off('data', onData);
      const from = /\r\nx-server-from:\s*([0-9a-f]+)/i.exec(head.toString('latin1'))?.[1]?.toLowerCase();
      if (refused(from)) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
      upstream.on('error', () => undefined);
      live.set(client, { from, upstream });
      upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => drop(client));
      upstream.on('close', () => drop(client));
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    block: (id) => {
      blocked.add(id.toLowerCase());
      for (const [client, pair] of live) if (refused(pair.from)) drop(client);
    },
    blockAll: () => {
      all = true;
      for (const client of [...live.keys()]) drop(client);
    },
    unblock: () => {
      blocked.clear();
      all = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of [...live.keys()]) drop(client);
        server.close(() => resolve());
      }),
  };
}
