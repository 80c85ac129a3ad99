// The native policy runs a refused stream again itself. grpc-js retries a stream refused by
// the server (REFUSED_STREAM) only once; when its retry is refused too, the call fails,
// though no server saw it. Here two of three backends refuse every stream, so round robin
// puts many calls on one refuser after the other: every call must still succeed, with its
// messages intact, on the one backend that serves. A call that every backend refuses
// fails after a bounded number of attempts.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { silentLogger } from '../lib/core/logger.js';
import { MAX_REPLAYS } from '../lib/core/request-log.js';
import { callEcho, chatEcho, collectEcho, countEcho, EchoClient, startBackend, echoClient } from '../testkit/tap-backend.js';
import { startRefusingServer, type RefusingServer } from '../testkit/refusing-server.js';

registerAnchorpool({ logger: silentLogger });
/** A unary call that names itself in the `x-call` header, so the refusers can tell which calls they turned away. */
function namedCall(echo: EchoClient, name: string): Promise<string> {
  const metadata = new grpc.Metadata();
  metadata.set('x-call', name);
  return new Promise((resolve, reject) => {
    (echo as unknown as { echo: (r: Buffer, m: grpc.Metadata, o: grpc.CallOptions, cb: grpc.requestCallback<Buffer>) => void }).echo(
      Buffer.from('who'),
      metadata,
      { deadline: Date.now() + 3000 },
      (err, reply) => (err ? reject(err) : resolve((JSON.parse(reply!.toString()) as { server: string }).server)),
    );
  });
}

/**
 * Calls until every connection is up: the serving backend answered and each refuser
 * refused a stream. (While only refusers are READY a call can fail; that is not measured.)
 */
async function warm(echo: EchoClient, refusers: RefusingServer[]): Promise<void> {
  let answered = false;
  for (let i = 0; i < 200 && !(answered && refusers.every((r) => r.refused.length > 0)); i++) {
    answered = (await callEcho(echo, 3000).then(() => true, () => false)) || answered;
  }
  for (const refuser of refusers) refuser.refused.length = 0;
}

/** grpc-js's outlier_detection as the parent policy (snake_case, Durations: what grpc-js 1.14 parses), ejecting nothing. */
const underOutlierDetection = {
  'grpc.service_config': JSON.stringify({
    loadBalancingConfig: [{ outlier_detection: { interval: { seconds: 10, nanos: 0 }, child_policy: [{ anchored_round_robin: {} }] } }],
  }),
};

for (const [name, options] of [['anchored_round_robin', {}], ['under outlier_detection', underOutlierDetection]] as const) {
  t.test(`${name}: a call refused by one backend after another still runs, on the backend that serves`, async (t) => {
    await refusedByBoth(t, options);
  });
}

async function refusedByBoth(t: Test, options: grpc.ClientOptions): Promise<void> {
  const good = await startBackend(t, { name: 'good' });
  const first = await startRefusingServer(t);
  const second = await startRefusingServer(t);
  const echo = echoClient(t, `pass:///${first.address}#1,${second.address}#1,${good.address}#1`, options);
  await warm(echo, [first, second]);
  const names = Array.from({ length: 90 }, (_, i) => `call-${i}`);
  const servers = await Promise.all(names.map((name) => namedCall(echo, name)));
  t.equal(servers.filter((s) => s === 'good').length, 90, '90 of 90 calls succeeded, every one on the backend that serves');
  const refusedTwice = names.filter((name) => first.refused.includes(name) && second.refused.includes(name));
  t.ok(first.refused.length > 0 && second.refused.length > 0, `both refusers turned calls away (${first.refused.length} and ${second.refused.length} streams)`);
  // grpc-js alone would fail these: its own retry of a refused stream happens once.
  t.ok(refusedTwice.length > 0, `${refusedTwice.length} call(s) were refused by both backends and still succeeded`);
}

t.test('anchored_round_robin: a refused client stream, bidi stream and server stream run again with every message, in order', async (t) => {
  const good = await startBackend(t, { name: 'good' });
  const refuser = await startRefusingServer(t);
  const echo = echoClient(t, `pass:///${refuser.address}#1,${good.address}#1`);
  await warm(echo, [refuser]);
  for (let i = 0; i < 4; i++) {
    t.equal(await collectEcho(echo, ['a', 'b', 'c', 'd']), '4', `client stream ${i}: the server received all 4 messages`);
    t.same(await chatEcho(echo, ['x', 'y', 'z']), ['x', 'y', 'z'], `bidi stream ${i}: all 3 echoed, in order`);
    t.same(await countEcho(echo, 3), ['0', '1', '2'], `server stream ${i}: 3 replies`);
  }
  t.ok(refuser.refused.length >= 4, `the refuser turned ${refuser.refused.length} of the 12 streams away first`);
});

t.test(`anchored_round_robin: a call that every backend refuses fails after ${MAX_REPLAYS} replays of each of grpc-js's two attempts`, async (t) => {
  const first = await startRefusingServer(t);
  const second = await startRefusingServer(t);
  const echo = echoClient(t, `pass:///${first.address}#1,${second.address}#1`);
  const failure = await namedCall(echo, 'doomed').then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  t.equal(failure?.code, grpc.status.UNAVAILABLE, 'the call fails UNAVAILABLE');
  t.match(failure?.details, /Stream refused by server/, 'with the refusal');
  const streams = [...first.refused, ...second.refused].filter((name) => name === 'doomed').length;
  t.equal(streams, 2 * (MAX_REPLAYS + 1), `${2 * (MAX_REPLAYS + 1)} streams in all: the first stream and ${MAX_REPLAYS} replays, for grpc-js's attempt and for its one retry`);
});
