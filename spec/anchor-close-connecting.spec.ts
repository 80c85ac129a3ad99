// A lease-pool anchor closed in the turn it started must not connect. Its channel's
// ipv4: resolver answers on the next tick, even after the channel closed: grpc-js then
// makes a fresh pick_first on the closed channel, which connects and stays connected for
// good (the server counted the connection until the process ended). Against a real
// grpc-js backend, whose server counts the connections; control anchors left open show
// that the connections did land.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { connectivityState } from '@grpc/grpc-js';
import { AnchorSet } from '../lib/anchors/anchor-set.js';
import type { AnchorListener, AnchorSpec } from '../lib/anchors/anchor.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { ChannelAnchor, type ChannelAnchorSettings } from '../lib/pool/channel-anchor.js';
import type { Backend } from '../testkit/echo/backend.js';
import { startBackend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';

const settings: ChannelAnchorSettings = { credentials: grpc.credentials.createInsecure(), channelOptions: {}, maxStreams: 100, tag: 'close-connecting' };
const quiet: AnchorListener = { state: () => {}, health: () => {}, eligibility: () => {}, closed: () => {} };

function anchor(t: Test, spec: AnchorSpec, extra: Partial<ChannelAnchorSettings> = {}): ChannelAnchor {
  const made = new ChannelAnchor(spec, { ...settings, ...extra }, quiet);
  t.teardown(() => made.close());
  return made;
}

const connections = async (backend: Backend): Promise<number> => (await backend.stats()).connections.length;

/** The server counts just the `open` control connections within a few seconds (else the test fails with what it counts). */
async function settlesAt(t: Test, backend: Backend, open: number, what: string): Promise<void> {
  // The late connections land within a few ms of the control ones: give them time to.
  await sleep(300);
  const counted = await waitFor(async () => ((await connections(backend)) === open ? open : false), { what, timeoutMs: 3000 }).catch(async () => connections(backend));
  t.equal(counted, open, `${what}: the server counts only the ${open} open anchor connection(s)`);
}

t.test('a ChannelAnchor closed in the turn it started never connects', async (t) => {
  const backend = await startBackend(t, { name: 'b0' });
  const closed = Array.from({ length: 4 }, (_, index) => anchor(t, { key: 'gone', index, address: backend.address }));
  const control = anchor(t, { key: 'kept', index: 0, address: backend.address });
  control.start();
  for (const a of closed) {
    a.start();
    a.close();
  }
  await waitFor(() => control.state === 'READY', { what: 'the control anchor READY' });
  await settlesAt(t, backend, 1, 'plain');
  t.same(
    closed.map((a) => a.channel.getConnectivityState(false)),
    closed.map(() => connectivityState.SHUTDOWN),
    'the closed channels stay SHUTDOWN (a late resolution does not bring them back)',
  );
});

t.test('the same with health checks on', async (t) => {
  const backend = await startBackend(t, { name: 'b1' });
  const healthCheck = { serviceName: '', retryInitialMillis: 100, retryMaxMillis: 1000, unimplemented: () => {} };
  const closed = Array.from({ length: 2 }, (_, index) => anchor(t, { key: 'gone', index, address: backend.address }, { healthCheck }));
  const control = anchor(t, { key: 'kept', index: 0, address: backend.address }, { healthCheck });
  control.start();
  for (const a of closed) {
    a.start();
    a.close();
  }
  await waitFor(() => control.state === 'READY' && control.health === 'SERVING', { what: 'the control anchor READY and SERVING' });
  await settlesAt(t, backend, 1, 'health checked');
});

t.test('an AnchorSet that drops a key in the turn it added it (a subset change, a quick delete)', async (t) => {
  const backend = await startBackend(t, { name: 'b2' });
  const set = new AnchorSet<ChannelAnchor>((spec, listener) => new ChannelAnchor(spec, settings, listener), { state: () => {}, eligible: () => {} }, { drainTimeoutMillis: 1000 });
  t.teardown(() => set.closeAll());
  const entry = (anchors: number): DesiredEntry => ({ addr: backend.address, anchors });
  // From a microtask, as an etcd event or a subset change (queueMicrotask) arrives: ahead of the resolver's tick.
  await Promise.resolve();
  set.apply(new Map([['svc/kept', entry(2)], ['svc/gone', entry(3)]]));
  queueMicrotask(() => set.apply(new Map([['svc/kept', entry(2)]])));
  await waitFor(() => [...set.active()].every((a) => a.state === 'READY'), { what: 'the kept anchors READY' });
  t.equal([...set.draining()].length, 0, 'the dropped key closed at once (it had no leases)');
  await settlesAt(t, backend, 2, 'anchor set');
});
