// One process of the subsetting benchmark's backends (subsetting.ts): many cheap grpc-js
// Echo servers in one process, each on its own port. Each accepts TCP itself and injects
// the socket into its own grpc-js server (as testkit/echo/echo-server.ts does), so it
// counts on the server side the connections it holds, has opened and has closed, and the
// Echo calls it served. Controlled over IPC; exits when its parent goes away.
//
//   fork(build/scripts/bench/subsetting-backends.js, [firstIndex, count])
import * as grpc from '@grpc/grpc-js';
import net from 'node:net';
import { echoService } from '../../testkit/echo/echo-service.js';

export interface BackendCounts {
  /** Connections open now. */
  readonly open: number;
  /** Connections accepted, and closed, since the process started. */
  readonly opened: number;
  readonly closed: number;
  /** Echo calls served since the last reset-calls. */
  readonly calls: number;
}

export type BackendsRequest = { type: 'stats'; id: number } | { type: 'reset-calls'; id: number };
export type BackendsReply =
  | { type: 'listening'; ports: number[] }
  | { type: 'stats'; id: number; backends: BackendCounts[]; rss: number }
  | { type: 'reset-calls'; id: number };

class Counted {
  open = 0;
  opened = 0;
  closed = 0;
  calls = 0;
}

async function serve(name: string, counts: Counted): Promise<number> {
  const server = new grpc.Server();
  const reply = Buffer.from(JSON.stringify({ server: name, peer: '' }));
  // Only Echo: the other methods of the test service are not called here.
  server.addService({ echo: echoService.echo }, {
    echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      counts.calls += 1;
      callback(null, reply);
    },
  });
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const tcp = net.createServer((socket) => {
    counts.open += 1;
    counts.opened += 1;
    socket.once('close', () => {
      counts.open -= 1;
      counts.closed += 1;
    });
    injector.injectConnection(socket);
  });
  // A big accept backlog: a thousand pools connect at once.
  await new Promise<void>((resolve) => tcp.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  return (tcp.address() as net.AddressInfo).port;
}

const [first, count] = process.argv.slice(2).map(Number) as [number, number];
const backends = Array.from({ length: count }, () => new Counted());
const ports: number[] = [];
for (const [i, counts] of backends.entries()) ports.push(await serve(`b${first + i}`, counts));
const send = (message: BackendsReply): void => void process.send?.(message);

process.on('message', (message: BackendsRequest) => {
  if (message.type === 'stats') {
    send({ type: 'stats', id: message.id, backends: backends.map((b) => ({ open: b.open, opened: b.opened, closed: b.closed, calls: b.calls })), rss: process.memoryUsage().rss });
  } else if (message.type === 'reset-calls') {
    for (const b of backends) b.calls = 0;
    send({ type: 'reset-calls', id: message.id });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'listening', ports });
