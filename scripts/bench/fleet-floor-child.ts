// One process of the fleet benchmark's floor: the least a process can do to go from a put
// to a usable connection, with no pool. A bare etcd3 watch on the prefix (listing first,
// as a pool does), and for every added key one HTTP/2 session (node:http2) to the key's
// address, reported once the server's SETTINGS arrive. Measured in the same run as the
// pool, it shows what the machine allows K processes, whatever the library does.
//
//   node build/scripts/bench/fleet-floor-child.js <etcd host,…> <prefix>
import http2 from 'node:http2';
import { Etcd3 } from 'etcd3';

const [hosts, prefix] = process.argv.slice(2) as [string, string];
const send = (message: object): void => void process.send?.(message);
const now = (): number => performance.timeOrigin + performance.now();

const client = new Etcd3({ hosts: hosts.split(',') });
const sessions = new Map<string, http2.ClientHttp2Session>();

function connect(key: string, value: string): void {
  const address = value.split('#')[0]!;
  const session = http2.connect(`http://${address}`);
  sessions.set(key, session);
  session.on('error', () => undefined);
  session.once('remoteSettings', () => send({ type: 'leased', key, at: now() }));
}

const listing = await client.getAll().prefix(prefix).exec();
const watcher = await client.watch().prefix(prefix).startRevision(String(Number(listing.header.revision) + 1)).create();
watcher.on('put', (kv) => {
  const key = kv.key.toString();
  send({ type: 'seen', key, at: now() });
  connect(key, kv.value.toString());
});
watcher.on('delete', (kv) => {
  const key = kv.key.toString();
  sessions.get(key)?.close();
  sessions.delete(key);
});
process.on('message', (message: { type: string }) => {
  if (message.type !== 'stop') return;
  for (const session of sessions.values()) session.close();
  void watcher.cancel().then(() => (client.close(), process.exit(0)));
});
send({ type: 'ready' });
