// A tiny gRPC service for tests, benchmarks and the demo, defined without .proto files.
// Messages are raw bytes. Echo answers with JSON naming the server and the peer (the
// client's address and port as the server saw it), so a caller can tell which backend
// and which connection served it; the request "fail" gets an error status and
// "sleep:<ms>" a delayed answer. The streaming methods cover every call shape.
import * as grpc from '@grpc/grpc-js';

const bytes = {
  requestSerialize: (value: Buffer) => value,
  requestDeserialize: (value: Buffer) => value,
  responseSerialize: (value: Buffer) => value,
  responseDeserialize: (value: Buffer) => value,
};

export const echoService = {
  echo: { path: '/anchorpool.test.Echo/Echo', requestStream: false, responseStream: false, ...bytes },
  /** Request: the number of replies to stream back ("fail" ends with an error status). */
  count: { path: '/anchorpool.test.Echo/Count', requestStream: false, responseStream: true, ...bytes },
  /** Replies once with the number of messages received. */
  collect: { path: '/anchorpool.test.Echo/Collect', requestStream: true, responseStream: false, ...bytes },
  /** Echoes every message back. */
  chat: { path: '/anchorpool.test.Echo/Chat', requestStream: true, responseStream: true, ...bytes },
} satisfies grpc.ServiceDefinition;

export interface EchoReply {
  server: string;
  peer: string;
}

export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
export type EchoClient = InstanceType<typeof EchoClient>;

type EchoMethod = (request: Buffer, options: grpc.CallOptions, callback: grpc.requestCallback<Buffer>) => grpc.ClientUnaryCall;

/** One unary Echo call; resolves with the parsed reply. */
export function callEcho(client: grpc.Client, deadlineMillis = 5000, request = 'ping'): Promise<EchoReply> {
  const echo = (client as unknown as { echo: EchoMethod }).echo.bind(client);
  return new Promise((resolve, reject) => {
    echo(Buffer.from(request), { deadline: Date.now() + deadlineMillis }, (err, reply) => {
      if (err) reject(err);
      else resolve(JSON.parse(reply!.toString('utf8')) as EchoReply);
    });
  });
}

/** One Collect call (a client stream): sends `messages`, resolves with the server's count. */
export function collectEcho(client: grpc.Client, messages: string[], deadlineMillis = 3000): Promise<string> {
  const collect = (client as unknown as { collect: (o: grpc.CallOptions, cb: grpc.requestCallback<Buffer>) => grpc.ClientWritableStream<Buffer> }).collect.bind(client);
  return new Promise((resolve, reject) => {
    const call = collect({ deadline: Date.now() + deadlineMillis }, (err, reply) => (err ? reject(err) : resolve(reply!.toString())));
    for (const m of messages) call.write(Buffer.from(m));
    call.end();
  });
}

/** One Chat call (bidi): sends `messages`, resolves with the echoes in order. */
export function chatEcho(client: grpc.Client, messages: string[], deadlineMillis = 3000): Promise<string[]> {
  const chat = (client as unknown as { chat: (o: grpc.CallOptions) => grpc.ClientDuplexStream<Buffer, Buffer> }).chat.bind(client);
  const call = chat({ deadline: Date.now() + deadlineMillis });
  for (const m of messages) call.write(Buffer.from(m));
  call.end();
  return streamed(call);
}

/** One Count call (a server stream): resolves with the `n` replies. */
export function countEcho(client: grpc.Client, n: number, deadlineMillis = 3000): Promise<string[]> {
  const count = (client as unknown as { count: (r: Buffer, o: grpc.CallOptions) => grpc.ClientReadableStream<Buffer> }).count.bind(client);
  return streamed(count(Buffer.from(String(n)), { deadline: Date.now() + deadlineMillis }));
}

function streamed(call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    call.on('data', (m: Buffer) => got.push(m.toString()));
    call.on('error', reject);
    call.on('status', (s: grpc.StatusObject) => (s.code === grpc.status.OK ? resolve(got) : undefined));
  });
}
