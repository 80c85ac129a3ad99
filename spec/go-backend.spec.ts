// The grpc-go test backend (testkit/go-backend.ts): it builds, answers Echo and
// grpc.health.v1 to a grpc-js client, counts connections and calls, and really enforces
// grpc-go's default keepalive policy (GOAWAY "too_many_pings" for a client that pings
// every second without calls). Without the Go toolchain this spec fails: CI installs it.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { callEcho, EchoClient } from '../testkit/echo/echo-service.js';
import { buildGoEcho, GO_TOOLCHAIN_MISSING, goToolchainAvailable, startGoBackend, type GoBackend, type GoBackendOptions } from '../testkit/go-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';

type HealthClient = grpc.Client & {
  check(request: { service: string }, options: grpc.CallOptions, callback: grpc.requestCallback<{ status: string }>): grpc.ClientUnaryCall;
  watch(request: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};
const HealthClient = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health') as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ClientOptions,
) => HealthClient;

async function started(t: Test, options: GoBackendOptions): Promise<GoBackend> {
  const backend = await startGoBackend(options);
  t.teardown(() => backend.kill());
  return backend;
}

function echoClient(t: Test, address: string, options: grpc.ClientOptions = {}): EchoClient {
  // A pool of its own: each client here is one connection of its own.
  const client = new EchoClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, ...options });
  t.teardown(() => client.close());
  return client;
}

function check(health: HealthClient): Promise<string> {
  return new Promise((resolve, reject) => {
    health.check({ service: '' }, { deadline: Date.now() + 5000 }, (err, reply) => (err ? reject(err) : resolve(reply!.status)));
  });
}

/** Resolves when the channel's state leaves `from`, with the new state. */
function leaves(channel: grpc.ChannelInterface, from: grpc.connectivityState, timeoutMillis: number): Promise<grpc.connectivityState> {
  return new Promise((resolve, reject) => {
    channel.watchConnectivityState(from, Date.now() + timeoutMillis, (err) => {
      if (err) reject(new Error(`channel still ${grpc.connectivityState[from]} after ${timeoutMillis} ms`));
      else resolve(channel.getConnectivityState(false));
    });
  });
}

if (!goToolchainAvailable()) {
  t.fail(GO_TOOLCHAIN_MISSING);
} else {
  t.before(async () => {
    const start = performance.now();
    await buildGoEcho();
    t.comment(`grpc-go echo binary ready in ${Math.round(performance.now() - start)} ms`);
  });

  t.test('Echo, health and stats on a grpc-go server, from a grpc-js client', async (t) => {
    const backend = await started(t, { name: 'go-a' });
    const echo = echoClient(t, backend.address);
    const reply = await callEcho(echo);
    t.equal(reply.server, 'go-a', 'the reply names the server');
    t.match(reply.peer, /^127\.0\.0\.1:\d+$/, 'and the peer as the server saw it');
    await t.rejects(callEcho(echo, 5000, 'fail'), { code: grpc.status.INTERNAL }, '"fail" answers INTERNAL');
    const slept = performance.now();
    await callEcho(echo, 5000, 'sleep:200');
    t.ok(performance.now() - slept >= 190, '"sleep:200" answers after 200 ms');

    // Health on the Echo client's own channel: still one connection.
    const health = new HealthClient(backend.address, grpc.credentials.createInsecure(), { channelOverride: echo.getChannel() });
    t.equal(await check(health), 'SERVING', 'Check: SERVING at start');
    const watch = health.watch({ service: '' });
    const seen: string[] = [];
    watch.on('data', (m: { status: string }) => seen.push(m.status));
    watch.on('error', () => undefined); // cancelled at the end
    t.teardown(() => watch.cancel());
    await waitFor(() => seen.length === 1, { what: 'the first Watch answer', timeoutMs: 5000 });
    await backend.setServing(false);
    t.equal(await check(health), 'NOT_SERVING', 'Check: NOT_SERVING after setServing(false)');
    await waitFor(() => seen.length === 2, { what: 'the Watch to report NOT_SERVING', timeoutMs: 5000 });
    t.same(seen, ['SERVING', 'NOT_SERVING'], 'Watch: SERVING, then NOT_SERVING');

    t.same(await backend.stats(), { connectionsOpen: 1, connectionsTotal: 1, calls: 3 }, 'one connection, three Echo calls (health calls not counted)');
  });

  t.test("grpc-go's default ping policy: a client pinging every second without calls gets GOAWAY too_many_pings", async (t) => {
    const backend = await started(t, { name: 'go-ping' });
    const pinger = echoClient(t, backend.address, { 'grpc.keepalive_time_ms': 1000, 'grpc.keepalive_permit_without_calls': 1 });
    // Control: the same backend, no keepalive; its connection must stay.
    const quiet = echoClient(t, backend.address);
    await callEcho(pinger);
    await callEcho(quiet);
    t.same(await backend.stats(), { connectionsOpen: 2, connectionsTotal: 2, calls: 2 }, 'two connections');
    const idleSince = performance.now();
    const channel = pinger.getChannel();
    t.equal(channel.getConnectivityState(false), grpc.connectivityState.READY, 'the pinging channel is READY');
    const next = await leaves(channel, grpc.connectivityState.READY, 10_000);
    const millis = Math.round(performance.now() - idleSince);
    t.ok(next === grpc.connectivityState.IDLE || next === grpc.connectivityState.TRANSIENT_FAILURE, `it left READY for ${grpc.connectivityState[next]} after ${millis} ms without calls`);
    // The ping after the call clears the strikes; the 3rd strike after it (about 4 s) closes.
    t.ok(millis >= 2000, 'after several pings, not at once');
    await waitFor(async () => (await backend.stats()).connectionsOpen === 1, { what: 'the server to close the pinging connection', timeoutMs: 3000 });
    t.equal(quiet.getChannel().getConnectivityState(false), grpc.connectivityState.READY, 'the quiet channel is still READY');
    t.same(await backend.stats(), { connectionsOpen: 1, connectionsTotal: 2, calls: 2 }, 'the server closed exactly the pinging connection');
  });
}
