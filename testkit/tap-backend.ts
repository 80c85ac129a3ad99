// Echo backends for tap tests: started per test, killed at t.teardown even on failure.
import type { Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { Backend, type BackendOptions } from './echo/backend.js';
import { callEcho, EchoClient } from './echo/echo-service.js';

export { Backend, type BackendOptions, type BackendStats } from './echo/backend.js';
export { callEcho, chatEcho, collectEcho, countEcho, EchoClient, type EchoReply } from './echo/echo-service.js';

export async function startBackend(t: Test, options: BackendOptions = {}): Promise<Backend> {
  const backend = new Backend(options);
  await backend.start();
  t.teardown(() => backend.kill());
  return backend;
}

/** A plaintext echo client on `target` (etcd:///…, pass:///…), closed at t.teardown. */
export function echoClient(t: Test, target: string, options: grpc.ClientOptions = {}): EchoClient {
  const client = new EchoClient(target, grpc.credentials.createInsecure(), options);
  t.teardown(() => client.close());
  return client;
}

/** Makes `count` calls one after another; how many each backend (by name) answered. */
export async function callsBy(echo: EchoClient, count: number, deadlineMs = 2000): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const reply = await callEcho(echo, deadlineMs);
    by.set(reply.server, (by.get(reply.server) ?? 0) + 1);
  }
  return by;
}
