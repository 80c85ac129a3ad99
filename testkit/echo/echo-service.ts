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
