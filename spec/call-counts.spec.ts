// The native policy's call counts in isolation (fake anchors): a call counts on its anchor
// from the pick, so picks made in one go see each other; a pick whose stream never starts
// is given back on the next turn; a replay moves the count; outcomes go where the call ran.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { CallCounts } from '../lib/native/call-counts.js';
import type { SubchannelInterface } from '../lib/grpc-js/experimental.js';
import { FakeAnchor } from './fakes/fake-anchor.js';

type Placed = FakeAnchor & { subchannel: SubchannelInterface };

function anchor(index: number): Placed {
  const listener = { state: () => undefined, health: () => undefined, eligibility: () => undefined, closed: () => undefined };
  return Object.assign(new FakeAnchor({ key: 'k', index, address: '10.0.0.1:1' }, listener), { subchannel: {} as SubchannelInterface });
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

t.test('a call counts from its pick to its end, once', async (t) => {
  const a = anchor(0);
  const counts = new CallCounts<Placed>({ another: () => undefined });
  counts.picked(a);
  counts.picked(a);
  t.equal(a.streams, 2, 'two picks made in one go count at once, before any stream starts');
  counts.started(a);
  counts.started(a);
  t.equal(a.streams, 2, 'their streams starting do not count again');
  await turn();
  t.equal(a.streams, 2, 'started picks are not given back');
  counts.ended(a, grpc.status.OK, 1);
  counts.ended(a, grpc.status.OK, 1);
  t.equal(a.streams, 0);
});

t.test('a pick whose stream never starts is given back on the next turn; a stream that starts later counts from its start', async (t) => {
  const a = anchor(0);
  const counts = new CallCounts<Placed>({ another: () => undefined });
  counts.picked(a);
  t.equal(a.streams, 1);
  await turn();
  t.equal(a.streams, 0, 'given back');
  counts.started(a);
  t.equal(a.streams, 1, 'a late start (slow call credentials) takes its own count');
  counts.ended(a, grpc.status.OK, 1);
  t.equal(a.streams, 0);
});

t.test('a replayed call moves its count; its outcome goes to the anchor that ran it', async (t) => {
  const [a, b] = [anchor(0), anchor(1)];
  const outcomes: string[] = [];
  const counts = new CallCounts<Placed>({ another: () => b, outcome: (x, code) => void outcomes.push(`${x.index} ${grpc.status[code]}`) });
  counts.picked(a);
  counts.started(a);
  counts.moved(a, b);
  t.same([a.streams, b.streams], [0, 1]);
  counts.ended(b, grpc.status.UNAVAILABLE, 1);
  t.same([a.streams, b.streams], [0, 0]);
  t.same(outcomes, ['1 UNAVAILABLE'], 'no outcome for the refused stream on a');
});

t.test('outcomes go to ejection as the count goes down', async (t) => {
  const a = anchor(0);
  const outcomes: number[] = [];
  const counts = new CallCounts<Placed>({ another: () => undefined, outcome: (_x, code) => void outcomes.push(code) });
  counts.picked(a);
  counts.started(a);
  t.equal(a.streams, 1);
  counts.ended(a, grpc.status.INTERNAL, 1);
  t.equal(a.streams, 0);
  t.same(outcomes, [grpc.status.INTERNAL]);
});
