// The replaying call in isolation, on fake streams: where a refused stream runs again,
// what it carries over, when it is not run again, and that the call is counted on
// exactly one anchor at a time (started / moved / ended balance, one status to grpc-js).
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { constants as http2 } from 'node:http2';
import { ReplayingCall, type CallPlacement, type PlacedAnchor } from '../lib/grpc-js/refused-stream-replay.js';
import { MAX_REPLAYS, RETRY_BUFFER_BYTES } from '../lib/core/request-log.js';
import type { SubchannelInterface } from '../lib/grpc-js/experimental.js';

type RealSubchannel = ReturnType<SubchannelInterface['getRealSubchannel']>;
type Listener = Parameters<RealSubchannel['createCall']>[3];

/** One HTTP/2 stream as the subchannel would open it: records what the call does to it. */
class FakeStream {
  readonly written: string[] = [];
  halfClosed = false;
  reads = 0;
  cancelled: string | undefined;
  constructor(
    readonly anchor: string,
    readonly listener: Listener,
  ) {}
  sendMessageWithContext(context: { callback?: (error?: Error | null) => void }, message: Buffer): void {
    this.written.push(message.toString());
    setImmediate(() => context.callback?.());
  }
  halfClose(): void {
    this.halfClosed = true;
  }
  startRead(): void {
    this.reads += 1;
  }
  cancelWithStatus(_code: grpc.status, details: string): void {
    this.cancelled = details;
  }
  getPeer(): string {
    return this.anchor;
  }
  getCallNumber(): number {
    return 1;
  }
  getDeadlineInfo(): string[] {
    return [];
  }
  getAuthContext(): never {
    throw new Error('not used');
  }
  refuse(): void {
    this.listener.onReceiveStatus({ code: grpc.status.UNAVAILABLE, details: 'Stream refused by server', metadata: new grpc.Metadata(), rstCode: http2.NGHTTP2_REFUSED_STREAM });
  }
  answer(): void {
    this.listener.onReceiveMetadata(new grpc.Metadata());
    this.listener.onReceiveMessage(Buffer.from('reply'));
    this.listener.onReceiveStatus({ code: grpc.status.OK, details: 'OK', metadata: new grpc.Metadata() });
  }
}

interface FakeAnchor extends PlacedAnchor {
  readonly name: string;
  readonly streams: FakeStream[];
}

function anchor(name: string): FakeAnchor {
  const streams: FakeStream[] = [];
  const real = { createCall: (_m: grpc.Metadata, _h: string, _p: string, listener: Listener) => (streams.push(new FakeStream(name, listener)), streams.at(-1)) };
  const subchannel = { getRealSubchannel: () => real, getConnectivityState: () => grpc.connectivityState.READY } as unknown as SubchannelInterface;
  return { name, streams, subchannel };
}

/** A placement that logs what it is told and offers the anchors in `next` in turn. */
function placement(next: FakeAnchor[]) {
  const events: string[] = [];
  const placed: CallPlacement<FakeAnchor> = {
    timed: false,
    started: (a) => void events.push(`started ${a.name}`),
    ended: (a, code) => void events.push(`ended ${a.name} ${grpc.status[code]}`),
    moved: (from, to) => void events.push(`moved ${from.name} -> ${to.name}`),
    another: () => next.shift(),
  };
  return { events, placed };
}

function listener() {
  const statuses: grpc.StatusObject[] = [];
  const messages: string[] = [];
  const heard: Listener = {
    onReceiveMetadata: () => undefined,
    onReceiveMessage: (m: Buffer) => void messages.push(m.toString()),
    onReceiveStatus: (s) => void statuses.push(s),
  };
  return { statuses, messages, heard };
}

const args = { metadata: new grpc.Metadata(), host: 'h', method: '/svc/M', callNumber: 1 };
const turn = () => new Promise((resolve) => setImmediate(resolve));

t.test('a refused stream runs again on the next anchor, with its messages, half-close and read, on the next turn', async (t) => {
  const a = anchor('a');
  const b = anchor('b');
  const { events, placed } = placement([b]);
  const { statuses, messages, heard } = listener();
  const written: string[] = [];
  const call = new ReplayingCall(a, placed, args, heard);
  call.startRead();
  call.sendMessageWithContext({ callback: () => void written.push('m1') }, Buffer.from('m1'));
  call.sendMessageWithContext({ callback: () => void written.push('m2') }, Buffer.from('m2'));
  call.halfClose();
  a.streams[0]!.refuse();
  t.equal(b.streams.length, 0, 'not in the same turn: a GOAWAY waiting in another socket is read first');
  await turn();
  const replayed = b.streams[0]!;
  t.same(replayed.written, ['m1', 'm2'], 'both messages, in order');
  t.ok(replayed.halfClosed, 'half-closed');
  t.equal(replayed.reads, 1, 'the read asked for before is asked for again');
  replayed.answer();
  await turn();
  t.same(written, ['m1', 'm2'], "each writer's callback ran once");
  t.same(messages, ['reply'], 'the reply reaches grpc-js');
  t.same(statuses.map((s) => s.code), [grpc.status.OK], 'one status, OK');
  t.same(events, ['started a', 'moved a -> b', 'ended b OK'], 'counted on a, then on b only, the outcome on b');
});

t.test('a stream refused after the server answered is not run again (it cannot be: headers mean a handler)', async (t) => {
  const a = anchor('a');
  const { events, placed } = placement([anchor('b')]);
  const { statuses, heard } = listener();
  new ReplayingCall(a, placed, args, heard);
  a.streams[0]!.listener.onReceiveMetadata(new grpc.Metadata());
  a.streams[0]!.refuse();
  await turn();
  t.same(statuses.map((s) => s.details), ['Stream refused by server'], 'the refusal goes to grpc-js');
  t.same(events, ['started a', 'ended a UNAVAILABLE']);
});

t.test(`requests beyond ${RETRY_BUFFER_BYTES} bytes commit the call: a refusal is handed on`, async (t) => {
  const a = anchor('a');
  const { events, placed } = placement([anchor('b')]);
  const { statuses, heard } = listener();
  const call = new ReplayingCall(a, placed, args, heard);
  call.sendMessageWithContext({}, Buffer.alloc(RETRY_BUFFER_BYTES + 1));
  a.streams[0]!.refuse();
  await turn();
  t.equal(statuses.length, 1, 'one status');
  t.same(events, ['started a', 'ended a UNAVAILABLE'], 'not moved');
});

t.test('with no other anchor the refusal is handed to grpc-js, whose own retry picks through the channel', async (t) => {
  const a = anchor('a');
  const { events, placed } = placement([]);
  const { statuses, heard } = listener();
  new ReplayingCall(a, placed, args, heard);
  a.streams[0]!.refuse();
  await turn();
  t.equal(statuses[0]?.code, grpc.status.UNAVAILABLE);
  t.equal((statuses[0] as { rstCode?: number }).rstCode, http2.NGHTTP2_REFUSED_STREAM, 'still a refusal, so grpc-js retries it once');
  t.same(events, ['started a', 'ended a UNAVAILABLE']);
});

t.test(`at most ${MAX_REPLAYS} replays: the refusal after them is handed on`, async (t) => {
  const anchors = Array.from({ length: MAX_REPLAYS + 2 }, (_, i) => anchor(`a${i}`));
  const { events, placed } = placement(anchors.slice(1));
  const { statuses, heard } = listener();
  new ReplayingCall(anchors[0]!, placed, args, heard);
  for (let i = 0; i <= MAX_REPLAYS; i++) {
    anchors[i]!.streams[0]!.refuse();
    await turn();
  }
  t.equal(anchors[MAX_REPLAYS + 1]!.streams.length, 0, `no stream after the ${MAX_REPLAYS}th replay`);
  t.equal(statuses.length, 1, 'one status');
  t.equal(events.filter((e) => e.startsWith('moved')).length, MAX_REPLAYS);
  t.equal(events.at(-1), `ended a${MAX_REPLAYS} UNAVAILABLE`);
});

t.test('a cancel while a replay waits ends the call once, on the anchor it was counted on, with no new stream', async (t) => {
  const a = anchor('a');
  const b = anchor('b');
  const { events, placed } = placement([b]);
  const { statuses, heard } = listener();
  const call = new ReplayingCall(a, placed, args, heard);
  a.streams[0]!.refuse();
  call.cancelWithStatus(grpc.status.CANCELLED, 'Cancelled on client');
  await turn();
  t.equal(b.streams.length, 0, 'no replay');
  t.same(statuses.map((s) => s.code), [grpc.status.CANCELLED], 'one status: the cancel');
  t.same(events, ['started a', 'ended a CANCELLED']);
});

t.test('a stream that was replaced reports nothing more', async (t) => {
  const a = anchor('a');
  const b = anchor('b');
  const { placed } = placement([b]);
  const { statuses, messages, heard } = listener();
  new ReplayingCall(a, placed, args, heard);
  a.streams[0]!.refuse();
  await turn();
  a.streams[0]!.answer();
  t.same(messages, [], "the old stream's late events are dropped");
  t.equal(statuses.length, 0);
  b.streams[0]!.answer();
  t.same(messages, ['reply']);
  t.equal(statuses.length, 1);
});
