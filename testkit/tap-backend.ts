// Echo backends for tap tests: started per test, killed at t.teardown even on failure.
import type { Test } from 'tap';
import { Backend, type BackendOptions } from './echo/backend.js';

export { Backend, type BackendOptions, type BackendStats } from './echo/backend.js';
export { callEcho, chatEcho, collectEcho, countEcho, EchoClient, type EchoReply } from './echo/echo-service.js';

export async function startBackend(t: Test, options: BackendOptions = {}): Promise<Backend> {
  const backend = new Backend(options);
  await backend.start();
  t.teardown(() => backend.kill());
  return backend;
}
