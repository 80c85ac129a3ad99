// A tiny gRPC service for tests, defined without .proto files: Echo takes any bytes and
// answers with JSON naming the server and the peer (the client's address and port as
// the server saw it), so a test can tell which backend and which connection served it.
import * as grpc from '@grpc/grpc-js';

const passthrough = {
  requestSerialize: (value: Buffer) => value,
  requestDeserialize: (value: Buffer) => value,
  responseSerialize: (value: Buffer) => value,
  responseDeserialize: (value: Buffer) => value,
};

export const echoService = {
  echo: { path: '/anchorpool.test.Echo/Echo', requestStream: false, responseStream: false, ...passthrough },
} satisfies grpc.ServiceDefinition;

export interface EchoReply {
  server: string;
  peer: string;
}

export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
export type EchoClient = InstanceType<typeof EchoClient>;

type EchoMethod = (request: Buffer, options: grpc.CallOptions, callback: grpc.requestCallback<Buffer>) => void;

/** One unary Echo call; resolves with the parsed reply. */
export function callEcho(client: grpc.Client, deadlineMillis = 5000): Promise<EchoReply> {
  const echo = (client as unknown as { echo: EchoMethod }).echo.bind(client);
  return new Promise((resolve, reject) => {
    echo(Buffer.from('ping'), { deadline: Date.now() + deadlineMillis }, (err, reply) => {
      if (err) reject(err);
      else resolve(JSON.parse(reply!.toString('utf8')) as EchoReply);
    });
  });
}
