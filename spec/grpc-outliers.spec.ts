// Outlier ejection on the native path: a plain grpc-js client on pass:/// with
// anchored_round_robin ejects a backend whose calls fail with UNAVAILABLE (outcomes come
// from the policy's picker), and grpc-js's own outlier_detection policy works with
// anchored_round_robin as its child.
import t from 'tap';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { silentLogger } from '../lib/core/logger.js';
import { callEcho, echoClient, EchoClient, startBackend } from '../testkit/tap-backend.js';

registerAnchorpool({ logger: silentLogger, outlierDetection: { consecutiveFailures: 3, intervalMillis: 200, baseEjectionTimeMillis: 60_000, maxEjectionPercent: 50, failurePercentage: 0 } });
async function servers(echo: EchoClient, count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) seen.add((await callEcho(echo, 2000, 'who')).server);
  return seen;
}

/** Calls until both backends have answered (their connections come up one by one), at most 200. */
async function bothServe(echo: EchoClient): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) seen.add((await callEcho(echo, 2000, 'who')).server);
  return seen;
}

/** Calls that only the backend called bad fails, until `failed` of them failed or `limit` calls were made. */
async function failOnBad(echo: EchoClient, limit: number): Promise<number> {
  let failed = 0;
  for (let i = 0; i < limit; i++) await callEcho(echo, 2000, 'unavailable:bad').catch(() => (failed += 1));
  return failed;
}

t.test('anchored_round_robin ejects a backend whose calls fail: 3 UNAVAILABLE in a row, then every call goes elsewhere', async (t) => {
  const good = await startBackend(t, { name: 'good' });
  const bad = await startBackend(t, { name: 'bad' });
  const echo = echoClient(t, `pass:///${good.address}#2,${bad.address}#2`);
  t.same(await bothServe(echo), new Set(['good', 'bad']), 'both serve at first');
  const failed = await failOnBad(echo, 20);
  t.equal(failed, 3, 'exactly 3 calls failed (consecutiveFailures) before bad was ejected');
  t.same(await servers(echo, 20), new Set(['good']), 'then every call goes to good');
});

t.test("grpc-js's own outlier_detection policy with anchored_round_robin as its child", async (t) => {
  const good = await startBackend(t, { name: 'good' });
  const bad = await startBackend(t, { name: 'bad' });
  const serviceConfig = {
    loadBalancingConfig: [
      {
        outlier_detection: {
          // grpc-js 1.14 reads snake_case fields and Duration objects here; anything else fails
          // the whole service config, and the channel silently falls back to pick_first.
          interval: { seconds: 0, nanos: 200_000_000 },
          base_ejection_time: { seconds: 60, nanos: 0 },
          max_ejection_percent: 50,
          failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 5 },
          child_policy: [{ anchored_round_robin: {} }],
        },
      },
    ],
  };
  const echo = echoClient(t, `pass:///${good.address}#2,${bad.address}#2`, { 'grpc.service_config': JSON.stringify(serviceConfig) });
  const first = await bothServe(echo);
  t.same(first, new Set(['good', 'bad']), `the child policy works under outlier_detection: both serve (${[...first].join(', ')})`);
  await failOnBad(echo, 40);
  // Its ejection runs on its 200 ms interval; calls made before that tick would count as
  // successes of bad in the same interval, so wait five intervals without calling.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = await servers(echo, 20);
  t.same(after, new Set(['good']), `outlier_detection ejected bad through anchored_round_robin's subchannels (served by: ${[...after].join(', ')})`);
});
