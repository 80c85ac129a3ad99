// The tcp proxy's HTTP/2 frame log and black-hole mode. The frame parser is fed hand-made
// bytes split at every position; pingGaps() and goaways() get hand-made logs. Then the
// real thing: grpc-js keepalive pings and a unary call through the proxy, a server's
// GOAWAY, and a black hole that a new channel cannot connect through and an existing one
// cannot call through, until resume().
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EchoClient, callEcho, echoService } from '../testkit/echo/echo-service.js';
import {
  ENHANCE_YOUR_CALM,
  FrameType,
  H2_PREFACE,
  goaways,
  pingGaps,
  recordConnection,
  type ConnectionFrames,
  type FrameEvent,
} from '../testkit/h2-frames.js';
import { waitFor } from '../testkit/tap-etcd.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';

const ACK = 0x1;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}
const ping = (flags: number, opaque: string) => frame(FrameType.PING, flags, 0, Buffer.from(opaque, 'hex'));
const goaway = (lastStreamId: number, errorCode: number, debug: string) => {
  const payload = Buffer.alloc(8 + Buffer.byteLength(debug));
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(errorCode, 4);
  payload.write(debug, 8);
  return frame(FrameType.GOAWAY, 0, 0, payload);
};

// Both directions of a short gRPC-like exchange, as lists of parts so the spec can name
// the offsets of the awkward places to split at.
const clientParts = [
  H2_PREFACE,
  frame(FrameType.SETTINGS, 0, 0, Buffer.from('000300000064', 'hex')),
  frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from('0000ffff', 'hex')),
  ping(0, '0102030405060708'),
  frame(FrameType.HEADERS, END_HEADERS, 1, Buffer.alloc(10, 0x82)),
  frame(FrameType.DATA, END_STREAM, 1, Buffer.from('hello')),
  ping(ACK, 'aaaaaaaaaaaaaaaa'), // the client's answer to a server ping: not recorded
  frame(FrameType.SETTINGS, ACK, 0),
  ping(0, '1112131415161718'),
];
const serverParts = [
  frame(FrameType.SETTINGS, 0, 0, Buffer.from('000400010000', 'hex')),
  frame(FrameType.SETTINGS, ACK, 0),
  ping(ACK, '0102030405060708'),
  frame(FrameType.HEADERS, END_HEADERS, 1, Buffer.alloc(8, 0x88)),
  frame(FrameType.DATA, 0, 1, Buffer.alloc(300, 0x61)),
  frame(FrameType.HEADERS, END_HEADERS | END_STREAM, 1, Buffer.alloc(4, 0x40)),
  ping(0, 'aaaaaaaaaaaaaaaa'), // a server ping: not recorded
  ping(ACK, '1112131415161718'),
  goaway(1, ENHANCE_YOUR_CALM, 'too_many_pings'),
];
const clientBytes = Buffer.concat(clientParts);
const serverBytes = Buffer.concat(serverParts);
/** Where part `n` starts. */
const offset = (parts: Buffer[], n: number) => parts.slice(0, n).reduce((sum, p) => sum + p.length, 0);

const expected: FrameEvent[] = [
  { kind: 'ping', at: 0, opaque: '0102030405060708' },
  { kind: 'ping', at: 0, opaque: '1112131415161718' },
  { kind: 'ping-ack', at: 0, opaque: '0102030405060708' },
  { kind: 'headers', at: 0, streamId: 1, endStream: false },
  { kind: 'data', at: 0, streamId: 1, length: 300, endStream: false },
  { kind: 'headers', at: 0, streamId: 1, endStream: true },
  { kind: 'ping-ack', at: 0, opaque: '1112131415161718' },
  { kind: 'goaway', at: 0, lastStreamId: 1, errorCode: ENHANCE_YOUR_CALM, debug: 'too_many_pings' },
];

/** Cuts `bytes` at the given offsets. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(from, cut));
    from = cut;
  }
  return chunks;
}

/** The log of the exchange fed in these chunks (all client bytes first), on a clock stuck at 0. */
function parse(clientChunks: Buffer[], serverChunks: Buffer[]): ConnectionFrames {
  const recorder = recordConnection(1, () => 0);
  for (const chunk of clientChunks) recorder.fromClient(chunk);
  for (const chunk of serverChunks) recorder.fromServer(chunk);
  return recorder.conn;
}

t.test('frame parser: the same log however the bytes are chunked', async (t) => {
  const whole = parse([clientBytes], [serverBytes]);
  t.same(whole.events, expected, 'in one chunk each: client pings, server ping ACKs, HEADERS, DATA, GOAWAY');
  t.same(whole.frameCounts, { client: clientParts.length - 1, server: serverParts.length }, 'every frame counted');
  t.equal(whole.parseError, undefined, 'no parse error');

  const named: [string, number[], number[]][] = [
    ['inside the preface', [5, 20], [4]],
    ['at the preface end and inside the next frame header', [24, 24 + 4], [9, 13]],
    ['inside frame headers', [offset(clientParts, 3) + 3, offset(clientParts, 4) + 8], [offset(serverParts, 2) + 1, offset(serverParts, 4) + 5]],
    ['exactly between frames', [offset(clientParts, 1), offset(clientParts, 3), offset(clientParts, 4)], [offset(serverParts, 3), offset(serverParts, 4), offset(serverParts, 8)]],
    ['inside PING and GOAWAY payloads and a long DATA payload', [offset(clientParts, 3) + 13], [offset(serverParts, 2) + 12, offset(serverParts, 4) + 150, offset(serverParts, 8) + 20]],
  ];
  for (const [what, clientCuts, serverCuts] of named) {
    t.same(parse(split(clientBytes, clientCuts), split(serverBytes, serverCuts)).events, expected, `split ${what}`);
  }

  const bytewise = (bytes: Buffer) => [...bytes].map((b) => Buffer.from([b]));
  t.same(parse(bytewise(clientBytes), bytewise(serverBytes)).events, expected, 'one byte at a time');

  // Every two-way split of each direction (the other one in one piece).
  const wrong: string[] = [];
  for (let cut = 1; cut < clientBytes.length; cut++) {
    const log = parse(split(clientBytes, [cut]), [serverBytes]);
    if (JSON.stringify(log.events) !== JSON.stringify(expected) || log.parseError) wrong.push(`client@${cut}`);
  }
  for (let cut = 1; cut < serverBytes.length; cut++) {
    const log = parse([clientBytes], split(serverBytes, [cut]));
    if (JSON.stringify(log.events) !== JSON.stringify(expected) || log.parseError) wrong.push(`server@${cut}`);
  }
  t.same(wrong, [], `all ${clientBytes.length - 1 + serverBytes.length - 1} two-way splits give the same log`);
});

t.test('frame parser: bytes that are not h2c stop it without throwing', async (t) => {
  const tls = parse([Buffer.from('160301020001000200', 'hex')], []);
  t.match(tls.parseError, /^client: no HTTP\/2 client preface/, `a TLS ClientHello: ${tls.parseError}`);
  const http1 = parse([clientBytes], [Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')]);
  t.match(http1.parseError, /^server: first frame is not SETTINGS/, `an HTTP/1.1 answer: ${http1.parseError}`);
  t.same(http1.events, expected.filter((e) => e.kind === 'ping'), 'the client direction is still logged');
  const recorder = recordConnection(1, () => 0);
  recorder.fromClient(Buffer.from('GET / HTTP/1.1\r\n'));
  recorder.fromClient(clientBytes);
  t.equal(recorder.conn.events.length, 0, 'nothing is parsed after the error');
});

t.test('pingGaps(): quick client pings, forgiven after a server HEADERS or DATA', async (t) => {
  const p = (at: number, opaque = String(at).padStart(16, '0')): FrameEvent => ({ kind: 'ping', at, opaque });
  const conn = {
    events: [
      p(0),
      p(200),
      { kind: 'ping-ack', at: 201, opaque: '0000000000000200' }, // an ACK is no server write
      p(400),
      { kind: 'headers', at: 450, streamId: 1, endStream: false },
      p(500), // first ping after a write: only the new reference
      p(700),
      { kind: 'data', at: 750, streamId: 1, length: 5, endStream: false },
      p(800),
      p(1900), // 1100 ms after the previous one
      p(2000),
    ] satisfies FrameEvent[],
  };
  t.same(
    pingGaps(conn, 1000).map((q) => [q.at, q.gapMillis]),
    [
      [200, 200],
      [400, 200],
      [700, 200],
      [2000, 100],
    ],
    'the pings less than 1000 ms after the previous one with no server write in between',
  );
  t.same(pingGaps(conn, 150).map((q) => q.at), [2000], 'with 150 ms, only the 100 ms gap');
  t.same(pingGaps({ events: [] }, 1000), [], 'no pings, no gaps');

  const g = (at: number, errorCode: number): FrameEvent => ({ kind: 'goaway', at, lastStreamId: 0, errorCode, debug: '' });
  t.same(
    goaways([
      { id: 1, events: [p(0), g(30, 0)] },
      { id: 2, events: [g(20, ENHANCE_YOUR_CALM)] },
    ]).map((x) => [x.connId, x.at, x.errorCode]),
    [
      [2, 20, ENHANCE_YOUR_CALM],
      [1, 30, 0],
    ],
    'goaways(): every GOAWAY with its connection, in time order',
  );
});

/** An in-process grpc-js server with the Echo service (Echo only), stopped at teardown. */
async function echoServer(t: Test, options: grpc.ServerOptions = {}): Promise<number> {
  const server = new grpc.Server(options);
  server.addService(echoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
      callback(null, Buffer.from(JSON.stringify({ server: 'in-process', peer: call.getPeer() }))),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  return port;
}

function echoClient(t: Test, port: number, options: grpc.ChannelOptions = {}): EchoClient {
  // A local subchannel pool: otherwise a new channel to the same target shares the
  // connection of an older one, and would not connect through the proxy by itself.
  const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, ...options });
  t.teardown(() => client.close());
  return client;
}

function ready(client: grpc.Client, millis: number): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + millis, (err) => (err ? reject(err) : resolve())));
}

const clientPings = (conn: ConnectionFrames) => conn.events.filter((e) => e.kind === 'ping');

t.test('through the proxy: grpc-js keepalive pings every 200 ms, and a unary call’s HEADERS and DATA', async (t) => {
  const port = await echoServer(t);
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: port, http2Frames: true });
  t.teardown(() => proxy.close());
  const client = echoClient(t, proxy.port, { 'grpc.keepalive_time_ms': 200, 'grpc.keepalive_permit_without_calls': 1 });
  await ready(client, 3000);
  // Waits for the pings rather than a fixed time: late timers on a loaded machine.
  await waitFor(() => proxy.frames().length === 1 && clientPings(proxy.frames()[0]!).length >= 5, { timeoutMs: 5000, intervalMs: 50, what: '5 keepalive pings' });

  const logs = proxy.frames();
  t.equal(logs.length, 1, 'one connection pair');
  const conn = logs[0]!;
  t.notOk(conn.closed, 'it is open');
  t.equal(conn.parseError, undefined, 'both directions parse as HTTP/2');
  const pings = clientPings(conn);
  const gaps = pings.slice(1).map((p, i) => p.at - pings[i]!.at);
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  t.ok(pings.length >= 5, `client pings (${pings.length}, gaps ${gaps.map((g) => g.toFixed(0)).join(', ')} ms)`);
  t.ok(Math.min(...gaps) >= 150 && median <= 400, `about 200 ms apart (min ${Math.min(...gaps).toFixed(0)}, median ${median.toFixed(0)} ms)`);
  const acked = new Set(conn.events.filter((e) => e.kind === 'ping-ack').map((e) => e.opaque));
  t.ok(pings.slice(0, -1).every((p) => acked.has(p.opaque)), 'the server ACKed each ping (the last one may still be in flight)');
  t.same(
    pingGaps(conn, 1000).map((q) => q.opaque),
    pings.slice(1).map((p) => p.opaque),
    'pingGaps(conn, 1000): every ping after the first (an idle server writes no HEADERS or DATA)',
  );

  await callEcho(client, 2000);
  const serverWrites = (conn: ConnectionFrames) => conn.events.filter((e) => e.kind === 'headers' || e.kind === 'data');
  const after = await waitFor(
    () => {
      const conn = proxy.frames()[0]!;
      const lastWrite = serverWrites(conn).at(-1)?.at;
      return lastWrite !== undefined && clientPings(conn).some((p) => p.at >= lastWrite) && conn;
    },
    { timeoutMs: 3000, intervalMs: 50, what: 'a ping after the call' },
  );
  const writes = serverWrites(after);
  t.same(
    writes.map((e) => ({ kind: e.kind, endStream: e.endStream })),
    [
      { kind: 'headers', endStream: false },
      { kind: 'data', endStream: false },
      { kind: 'headers', endStream: true },
    ],
    'the call: response HEADERS, DATA, trailers HEADERS with END_STREAM',
  );
  t.ok(writes.every((e) => e.streamId % 2 === 1 && e.streamId === writes[0]!.streamId), `on one client stream (${writes[0]?.streamId})`);
  t.ok((writes.find((e) => e.kind === 'data') as { length: number } | undefined)!.length > 5, 'DATA carries the reply');
  const lastWrite = writes.at(-1)!.at;
  const nextPing = clientPings(after).find((p) => p.at >= lastWrite);
  t.ok(nextPing, 'pings go on after the call');
  t.notOk(
    pingGaps(after, 1000).some((q) => q.opaque === nextPing?.opaque),
    'the first ping after the server’s writes is not a quick one',
  );
  t.equal(goaways(proxy.frames()).length, 0, 'no GOAWAY (grpc-js servers do not police pings)');
});

t.test('through the proxy: a server GOAWAY with its error code and debug data', async (t) => {
  // grpc-js ends a connection older than max_connection_age with GOAWAY(NO_ERROR, "max_age").
  const port = await echoServer(t, { 'grpc.max_connection_age_ms': 300, 'grpc.max_connection_age_grace_ms': 200 });
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: port, http2Frames: true });
  t.teardown(() => proxy.close());
  const client = echoClient(t, proxy.port);
  await ready(client, 3000);
  const [first] = await waitFor(() => goaways(proxy.frames()).at(0) && goaways(proxy.frames()), { timeoutMs: 3000, intervalMs: 50, what: 'a GOAWAY' });
  t.match(first, { connId: 1, errorCode: 0, debug: 'max_age' }, 'GOAWAY NO_ERROR "max_age" on connection 1');
  await waitFor(() => proxy.frames()[0]!.closed, { timeoutMs: 3000, intervalMs: 50, what: 'the first connection to close' });
  t.pass('the connection is marked closed once it ends');
});

t.test('black hole: new channels stay CONNECTING, calls on a READY one time out; resume() heals', async (t) => {
  const port = await echoServer(t);
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: port, http2Frames: true });
  t.teardown(() => proxy.close());
  const a = echoClient(t, proxy.port);
  await callEcho(a, 2000);
  t.equal(proxy.connectionCount(), 1, 'channel a is connected through the proxy');

  proxy.blackhole();
  const b = echoClient(t, proxy.port);
  const bChannel = b.getChannel();
  bChannel.getConnectivityState(true);
  // A raw socket, to see the TCP side: the handshake completes, nothing ever answers.
  const raw = net.connect({ host: '127.0.0.1', port: proxy.port });
  const rawEvents: string[] = [];
  raw.on('connect', () => rawEvents.push('connect'));
  raw.on('data', () => rawEvents.push('data'));
  raw.on('error', (err: NodeJS.ErrnoException) => rawEvents.push(`error ${err.code}`));
  raw.on('close', () => rawEvents.push('close'));
  t.teardown(() => raw.destroy());
  raw.write(H2_PREFACE);

  const states = new Set<string>();
  const started = performance.now();
  const callA = callEcho(a, 1000).then(
    () => 'OK',
    (err: grpc.ServiceError) => grpc.status[err.code],
  );
  while (performance.now() - started < 2000) {
    states.add(grpc.connectivityState[bChannel.getConnectivityState(false)]!);
    await sleep(25);
  }
  t.equal(await callA, 'DEADLINE_EXCEEDED', 'a call on the READY channel a fails with DEADLINE_EXCEEDED at its 1 s deadline');
  t.same([...states], ['CONNECTING'], 'channel b stays CONNECTING for 2 s (never READY)');
  t.same(rawEvents, ['connect'], 'a raw client connects, and gets nothing back');
  t.equal(proxy.blackholedCount(), 2, 'two connections accepted while black-holed (b and the raw one)');
  t.equal(proxy.connectionCount(), 1, 'no pair (no upstream connection) for them');
  t.equal(proxy.frames().length, 1, 'nor a frame log');

  proxy.resume();
  const c = echoClient(t, proxy.port);
  await ready(c, 3000);
  await callEcho(c, 2000);
  t.pass('after resume(): a new channel gets READY and its call succeeds');
  await callEcho(a, 2000);
  t.pass('the frozen connection of channel a flows again: its calls succeed');
  await waitFor(() => rawEvents.includes('close'), { timeoutMs: 2000, intervalMs: 20, what: 'the black-holed raw socket to be reset' });
  t.same(rawEvents, ['connect', 'error ECONNRESET', 'close'], 'the connections accepted while black-holed are reset on resume()');
  await ready(b, 5000);
  await callEcho(b, 2000);
  t.pass('so channel b connects again (its backoff ran out while it waited) and its calls succeed');
  t.equal(proxy.blackholedCount(), 2, 'the counter keeps the total');
  t.equal(proxy.frames().length, 3, 'frame logs for a, c and b’s new connection');
});
