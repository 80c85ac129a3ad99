// The native policy's call cap and load-driven anchors, against real stream-capped
// backends: with `maxStreamsPerAnchor` equal to the server's cap, a plain grpc-js client
// never puts a call over the cap on a connection (counted by the server), and a key at
// `addr#1-4` opens connections while every one of its anchors is full, up to 4, then
// drains back to one once the load is gone. As on the pool, growth adds capacity, not
// share.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../lib/core/errors.js';
import { AnchoredRoundRobinConfig } from '../lib/native/policy-config.js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import type { Logger } from '../lib/core/logger.js';
import { waitFor } from '../testkit/tap-etcd.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';

const extraChanges: string[] = [];
const warnings: string[] = [];
const recorder: Logger = {
  debug: () => undefined,
  info: (fields) => void (typeof fields.change === 'string' && extraChanges.push(`#${String(fields.index)} ${fields.change}`)),
  warn: (_fields, message) => void warnings.push(message),
  error: () => undefined,
};
registerAnchorpool({ logger: recorder });
const insecure = grpc.credentials.createInsecure();

function client(t: Test, target: string, policy: object): EchoClient {
  const c = new EchoClient(target, insecure, { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: policy }] }) });
  t.teardown(() => c.close());
  return c;
}

/** `loops` closed-loop callers for `millis`; resolves with calls made and failed. */
async function load(echo: EchoClient, loops: number, millis: number): Promise<{ calls: number; failed: number }> {
  let calls = 0;
  let failed = 0;
  const end = performance.now() + millis;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        await callEcho(echo, 5000).catch(() => (failed += 1));
        calls += 1;
      }
    }),
  );
  return { calls, failed };
}

t.test('maxStreamsPerAnchor: 16 callers on 2 connections capped at 3 never run more than 3 calls on one, and all succeed', async (t) => {
  const backend = await startBackend(t, { name: 'capped', delayMillis: 20 });
  const echo = client(t, `pass:///${backend.address}#2`, { maxStreamsPerAnchor: 3 });
  await callEcho(echo);
  await backend.resetStats();
  const { calls, failed } = await load(echo, 16, 1000);
  const peaks = Object.values((await backend.stats()).maxInFlightByConnection);
  t.equal(failed, 0, `0 of ${calls} calls failed (the ones over the cap waited in the channel)`);
  t.equal(peaks.length, 2, 'on 2 connections');
  t.same(peaks, [3, 3], `each peaked at exactly the cap (${peaks.join('/')})`);
});

t.test('calls that wait for room are served in order: a new call does not take a place before them', async (t) => {
  const backend = await startBackend(t, { name: 'capped', delayMillis: 10 });
  const echo = client(t, `pass:///${backend.address}#1`, { maxStreamsPerAnchor: 2 });
  await callEcho(echo);
  // 8 closed-loop callers on 2 places: each call is numbered as it starts; a call that
  // ends before an older one passed it in the queue.
  let started = 0;
  const running = new Set<number>();
  let overtakes = 0;
  let worst = 0;
  const end = performance.now() + 1500;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        const id = started++;
        running.add(id);
        await callEcho(echo, 5000);
        running.delete(id);
        const older = [...running].filter((other) => other < id).length;
        overtakes += older;
        worst = Math.max(worst, older);
      }
    }),
  );
  t.ok(started > 100, `${started} calls`);
  // In order, a call can pass at most the one other call that got a place with it.
  t.ok(worst <= 2, `a call passed at most ${worst} older waiting calls (${overtakes} passes in all)`);
});

t.test('with health checks the Watch stream is one of the capped calls: calls + Watch never exceed the cap', async (t) => {
  const backend = await startBackend(t, { name: 'capped', delayMillis: 20 });
  const echo = client(t, `pass:///${backend.address}#2`, { maxStreamsPerAnchor: 3, healthCheck: { serviceName: '' } });
  await callEcho(echo);
  await backend.resetStats();
  const { calls, failed } = await load(echo, 16, 1000);
  const peaks = Object.values((await backend.stats()).maxInFlightByConnection);
  t.equal(failed, 0, `0 of ${calls} calls failed`);
  t.same(peaks, [3, 3], `each connection peaked at the cap: 2 calls and its Watch (${peaks.join('/')})`);
});

t.test('a key at #1-4 grows to 4 connections under load, never over the cap, and drains back', async (t) => {
  extraChanges.length = 0;
  const backend = await startBackend(t, { name: 'capped', maxConcurrentStreams: 4, delayMillis: 20 });
  const echo = client(t, `pass:///${backend.address}#1-4`, { maxStreamsPerAnchor: 4, extraAnchorIdleMillis: 300 });
  await callEcho(echo);
  t.equal((await backend.stats()).connections.length, 1, 'one connection to start with');
  await backend.resetStats();
  const { calls, failed } = await load(echo, 16, 1500);
  const stats = await backend.stats();
  t.equal(failed, 0, `0 of ${calls} calls failed`);
  t.same(extraChanges.slice(0, 3), ['#1 opened', '#2 opened', '#3 opened'], 'three extra anchors opened, one after another, and no more');
  t.equal(Object.keys(stats.maxInFlightByConnection).length, 4, 'the server saw calls on 4 connections');
  t.ok(Object.values(stats.maxInFlightByConnection).every((n) => n <= 4), `never over the cap of 4 on a connection (peaks ${Object.values(stats.maxInFlightByConnection).join('/')})`);
  await waitFor(async () => (await backend.stats()).connections.length === 1, { what: 'one connection again, counted by the server (grpc-js closes an unreferenced subchannel on its 10 s sweep)', timeoutMs: 30_000 });
  t.same(extraChanges.slice(3), ['#3 drained', '#2 drained', '#1 drained'], 'drained newest first once idle');
});

t.test('growth adds capacity, not share: a grown key (#1-4) and a plain one (#1) still split calls 1:1', async (t) => {
  const a = await startBackend(t, { name: 'a', maxConcurrentStreams: 2, delayMillis: 20 });
  const b = await startBackend(t, { name: 'b', delayMillis: 20 });
  const echo = client(t, `pass:///${a.address}#1-4,${b.address}#1`, { maxStreamsPerAnchor: 2, extraAnchorIdleMillis: 60_000 });
  await callEcho(echo);
  await Promise.all(Array.from({ length: 12 }, () => callEcho(echo, 5000)));
  await waitFor(async () => (await a.stats()).connections.length > 1, { what: 'a grew' });
  await sleep(100);
  await Promise.all([a.resetStats(), b.resetStats()]);
  for (let i = 0; i < 100; i++) await callEcho(echo, 5000);
  const [onA, onB] = [(await a.stats()).calls, (await b.stats()).calls];
  t.ok(Math.abs(onA - onB) <= 2, `one caller: a ${onA}, b ${onB} (a holds ${(await a.stats()).connections.length} connections)`);
});

t.test('a bad cap is refused where it is given', async (t) => {
  t.throws(() => registerAnchorpool({ maxStreamsPerAnchor: 0 }), ConfigError, 'registerAnchorpool: 0');
  t.throws(() => registerAnchorpool({ maxStreamsPerAnchor: 1, healthCheck: {} }), /at least 2 with healthCheck/, 'registerAnchorpool: 1 with health checks');
  t.throws(() => registerAnchorpool({ extraAnchorIdleMillis: -1 }), ConfigError, 'registerAnchorpool: a negative idle time');
  registerAnchorpool({ logger: recorder });
});

t.test("the policy's own config: maxStreamsPerAnchor and extraAnchorIdleMillis, read and refused", async (t) => {
  const config = AnchoredRoundRobinConfig.createFromJson({ maxStreamsPerAnchor: 16, extraAnchorIdleMillis: 500 });
  t.equal(config.options.maxStreamsPerAnchor, 16);
  t.equal(config.options.extraAnchorIdleMillis, 500);
  t.same(config.toJsonObject(), { anchored_round_robin: { maxStreamsPerAnchor: 16, extraAnchorIdleMillis: 500 } }, 'and written back');
  const defaults = AnchoredRoundRobinConfig.createFromJson({});
  t.equal(defaults.options.maxStreamsPerAnchor, 100, 'default cap: 100, as the pool');
  t.equal(defaults.options.extraAnchorIdleMillis, 30_000, 'default idle time: 30 s, as the pool');
  for (const bad of [0, 1.5, '16', -1]) {
    t.throws(() => AnchoredRoundRobinConfig.createFromJson({ maxStreamsPerAnchor: bad }), { code: 'ANCHORPOOL_CONFIG', message: /anchored_round_robin config: maxStreamsPerAnchor: / }, `refused: ${JSON.stringify(bad)}`);
  }
  t.throws(() => AnchoredRoundRobinConfig.createFromJson({ maxStreamsPerAnchor: 1, healthCheck: { serviceName: '' } }), /maxStreamsPerAnchor: must be at least 2 with healthCheck/, 'with health checks the Watch stream takes one of the calls');
  t.throws(() => AnchoredRoundRobinConfig.createFromJson({ extraAnchorIdleMillis: -5 }), /extraAnchorIdleMillis: /);
});

t.test("a bad value in a channel's own config: grpc-js falls back to pick_first, and the policy says why first", async (t) => {
  const backend = await startBackend(t, { name: 'one' });
  warnings.length = 0;
  const echo = client(t, `pass:///${backend.address}#2`, { maxStreamsPerAnchor: 0 });
  await callEcho(echo);
  t.match(warnings, [/anchored_round_robin config: maxStreamsPerAnchor: .*; grpc-js ignores the channel's service config and uses pick_first/], 'one warning naming the field, the value and the consequence');
  t.equal((await backend.stats()).connections.length, 1, 'and it is so: one connection where #2 asked for two');
});
