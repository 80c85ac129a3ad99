// An HTTP/2 server that refuses every stream (RST_STREAM REFUSED_STREAM), as a gRPC server
// does with the streams a GOAWAY cut off, but on every stream and at will. It notes the
// `x-call` header of each stream it refuses, so a test can tell which calls it turned away.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

export interface RefusingServer {
  readonly address: string;
  /** The `x-call` header of every refused stream, in order ('' when absent). */
  readonly refused: string[];
}

export async function startRefusingServer(t: Test): Promise<RefusingServer> {
  const refused: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    refused.push(String(headers['x-call'] ?? ''));
    // Node reports the reset it sent as an error on the stream: it is the point here.
    stream.on('error', () => undefined);
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  );
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, refused };
}
