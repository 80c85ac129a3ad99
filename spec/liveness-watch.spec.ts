// The liveness watch's rules, on fake anchors and connections with a hand-moved clock:
// when it pings, when it drops a connection, when the ping rule holds a ping back, and
// when it gives up a connection attempt.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { LivenessWatch, pingAllowed, tickMillisFor, type LivenessWatchSettings } from '../lib/anchors/liveness-watch.js';
import type { Anchor, AnchorState } from '../lib/anchors/anchor.js';
import type { PingLog } from '../lib/grpc-js/subchannel-connection.js';

/** The spec's clock, moved by at(). */
let now = 0;

/** A connection whose reads, streams and ping answers the spec sets. */
class FakeConnection {
  readonly id = {};
  readonly pings: PingLog = { inFlight: false, answeredAt: undefined, messagesAtAnswer: 0 };
  bytes = 0;
  streams = 1;
  messages = 0;
  sent = 0;
  dropped = 0;
  /** 'ack': answer each ping at once; 'silent': never. */
  answer: 'ack' | 'silent' = 'ack';
  bytesRead = (): number => this.bytes;
  openStreams = (): number => this.streams;
  messagesReceived = (): number => this.messages;
  ping = (acked: (ok: boolean) => void): void => {
    this.sent += 1;
    this.pings.inFlight = true;
    if (this.answer === 'ack') {
      this.bytes += 17;
      queueMicrotask(() => this.ack(acked));
    } else {
      this.pending = acked;
    }
  };
  /** A late ACK for a 'silent' connection. */
  pending: ((ok: boolean) => void) | undefined;
  ack(acked: (ok: boolean) => void = this.pending!): void {
    this.pings.inFlight = false;
    this.pings.answeredAt = now;
    this.pings.messagesAtAnswer = this.messages;
    acked(true);
  }
  drop = (): void => {
    this.dropped += 1;
  };
}

class FakeAnchor {
  readonly key = 'k';
  readonly index = 0;
  readonly address = '10.0.0.1:1';
  closed = false;
  state: AnchorState = 'READY';
  stateSince = 0;
  streams = 1;
  aborts: string[] = [];
  current: FakeConnection | undefined = new FakeConnection();
  connection = (): FakeConnection | undefined => (this.state === 'READY' ? this.current : undefined);
  attemptSince = (): number | undefined => (this.state === 'CONNECTING' ? this.stateSince : undefined);
  abortConnect = (reason: string): boolean => {
    if (this.state !== 'CONNECTING') return false;
    this.aborts.push(reason);
    this.state = 'TRANSIENT_FAILURE';
    return true;
  };
}

const PING_TIMEOUT = 20;
const settings = (overrides: Partial<LivenessWatchSettings['liveness'] & object> = {}, connectTimeoutMillis = 0): LivenessWatchSettings => ({
  liveness: { quietMillis: 1000, pingTimeoutMillis: PING_TIMEOUT, minPingIntervalMillis: 300_000, ...overrides },
  connectTimeoutMillis,
});

function watch(anchor: FakeAnchor, watchSettings: LivenessWatchSettings = settings()) {
  now = 0;
  const frozen: string[] = [];
  const timedOut: string[] = [];
  const w = new LivenessWatch<Anchor>(
    watchSettings,
    { anchors: () => [anchor as unknown as Anchor], frozen: (_a, detail) => frozen.push(detail), connectTimedOut: (_a, detail) => timedOut.push(detail) },
    () => now,
  );
  return {
    w,
    frozen,
    timedOut,
    /** Moves the clock to `at` and ticks. */
    at(at: number): void {
      now = at;
      w.tick();
    },
  };
}

/** Lets a ping's timer and the verdict after it run. */
const pingTimeoutPasses = () => sleep(PING_TIMEOUT * 3);

t.test('a connection that reads nothing while a stream waits gets one ping after quietMillis, and is dropped when no answer comes', async (t) => {
  const anchor = new FakeAnchor();
  const conn = anchor.current!;
  conn.answer = 'silent';
  const { w, at, frozen } = watch(anchor);
  at(0);
  at(999);
  t.equal(conn.sent, 0, 'no ping before quietMillis of silence');
  at(1000);
  t.equal(conn.sent, 1, 'a ping at quietMillis');
  at(1500);
  t.equal(conn.sent, 1, 'one ping at a time');
  await pingTimeoutPasses();
  t.equal(conn.dropped, 1, 'dropped after pingTimeoutMillis without an answer');
  t.equal(frozen.length, 1);
  t.match(frozen[0], /no answer from 10\.0\.0\.1:1 \(k#0\) to a ping within 20 ms after 1000 ms of silence/);
  t.same(w.counts(), { pings: 1, frozen: 1, connectTimeouts: 0 });
});

t.test('a slow call on a live connection: the ping is answered and nothing is dropped', async (t) => {
  const anchor = new FakeAnchor();
  const conn = anchor.current!;
  const { w, at } = watch(anchor);
  at(0);
  at(1000);
  await pingTimeoutPasses();
  t.equal(conn.sent, 1);
  t.equal(conn.dropped, 0, 'the ACK shows the connection alive');
  // The call goes on for 30 s with nothing written: no second ping (the ping rule) and no drop.
  for (let clock = 1100; clock <= 31_000; clock += 250) at(clock);
  await pingTimeoutPasses();
  t.equal(conn.sent, 1, 'no second ping while the server wrote nothing since the first');
  t.same(w.counts(), { pings: 1, frozen: 0, connectTimeouts: 0 });
});

t.test('the ping rule: a second ping needs minPingIntervalMillis after the answer, or a message after it', async (t) => {
  t.ok(pingAllowed(undefined, 0, 0, 0, 300_000), 'the first ping on a connection');
  t.notOk(pingAllowed(1000, 5, 5, 300_999, 300_000), 'too soon, and nothing written since');
  t.ok(pingAllowed(1000, 5, 5, 301_000, 300_000), 'minPingIntervalMillis after the answer');
  t.ok(pingAllowed(1000, 5, 6, 2000, 300_000), 'a message arrived after the answer');

  const anchor = new FakeAnchor();
  const conn = anchor.current!;
  const { at } = watch(anchor);
  at(0);
  at(1000);
  await pingTimeoutPasses();
  t.equal(conn.sent, 1);
  // A message arrives (the server wrote DATA), then silence again.
  conn.messages += 1;
  conn.bytes += 50;
  at(2000);
  at(3000);
  t.equal(conn.sent, 2, 'a ping again after the server wrote, once quiet again');
});

t.test('a busy connection never pings', async (t) => {
  const anchor = new FakeAnchor();
  const conn = anchor.current!;
  const { at } = watch(anchor);
  for (let clock = 0; clock <= 60_000; clock += 250) {
    conn.bytes += 100;
    at(clock);
  }
  t.equal(conn.sent, 0);
});

t.test('no ping without a stream in use, nor without an HTTP/2 stream open (grpc-go allows none then)', async (t) => {
  const idle = new FakeAnchor();
  idle.streams = 0;
  const first = watch(idle);
  for (let clock = 0; clock <= 10_000; clock += 250) first.at(clock);
  t.equal(idle.current!.sent, 0, 'no lease or call on the anchor');

  const leasedButQuiet = new FakeAnchor();
  leasedButQuiet.current!.streams = 0;
  const second = watch(leasedButQuiet);
  for (let clock = 0; clock <= 10_000; clock += 250) second.at(clock);
  t.equal(leasedButQuiet.current!.sent, 0, 'a lease held with no call on the connection');
});

t.test('the silence is counted from when a stream starts waiting, not from the last byte of an idle connection', async (t) => {
  const anchor = new FakeAnchor();
  anchor.streams = 0;
  const conn = anchor.current!;
  const { at } = watch(anchor);
  at(0);
  at(60_000);
  anchor.streams = 1;
  at(60_250);
  t.equal(conn.sent, 0, 'a call that just started is not silence');
  at(61_250);
  t.equal(conn.sent, 1);
});

t.test('bytes that arrive while the ACK is late show the connection alive; no other ping goes out before that ACK', async (t) => {
  const anchor = new FakeAnchor();
  const conn = anchor.current!;
  conn.answer = 'silent';
  const { at, frozen } = watch(anchor);
  at(0);
  at(1000);
  conn.bytes += 200;
  await pingTimeoutPasses();
  t.equal(conn.dropped, 0);
  t.equal(frozen.length, 0);
  at(2000);
  at(3000);
  t.equal(conn.sent, 1, 'the first ping is still out: the rule counts from its ACK');
  conn.ack();
  conn.messages += 1;
  conn.bytes += 50;
  at(3250);
  at(4250);
  t.equal(conn.sent, 2, 'after the ACK and a message, a ping again');
});

t.test('two anchor sets watching one connection (channels share subchannels): one ping, the rule per connection', async (t) => {
  const first = new FakeAnchor();
  const second = new FakeAnchor();
  second.current = first.current;
  const conn = first.current!;
  const a = watch(first);
  const b = watch(second);
  for (let clock = 0; clock <= 60_000; clock += 250) {
    a.at(clock);
    b.at(clock);
    await Promise.resolve();
  }
  t.equal(conn.sent, 1, 'one ping in a minute, however many watch it');
});

t.test('a new connection starts a new record: its first ping is allowed', async (t) => {
  const anchor = new FakeAnchor();
  const { at } = watch(anchor);
  at(0);
  at(1000);
  await pingTimeoutPasses();
  t.equal(anchor.current!.sent, 1);
  anchor.current = new FakeConnection();
  at(1100);
  at(2100);
  t.equal(anchor.current.sent, 1, 'pinged at once after its own quiet time');
});

t.test('liveness off: nothing is pinged', async (t) => {
  const anchor = new FakeAnchor();
  const { at } = watch(anchor, { liveness: undefined, connectTimeoutMillis: 0 });
  for (let clock = 0; clock <= 10_000; clock += 250) at(clock);
  t.equal(anchor.current!.sent, 0);
});

t.test('an attempt CONNECTING for connectTimeoutMillis is given up, once', async (t) => {
  const anchor = new FakeAnchor();
  anchor.state = 'CONNECTING';
  anchor.stateSince = 0;
  const { w, at, timedOut } = watch(anchor, settings({}, 3000));
  at(2999);
  t.same(anchor.aborts, []);
  at(3000);
  t.equal(anchor.aborts.length, 1);
  t.match(anchor.aborts[0], /no connection to 10\.0\.0\.1:1 within connectTimeoutMillis \(3000 ms\)/);
  t.equal(timedOut.length, 1);
  at(3250);
  t.equal(anchor.aborts.length, 1, 'the anchor left CONNECTING');
  t.same(w.counts(), { pings: 0, frozen: 0, connectTimeouts: 1 });
});

t.test('the tick is a quarter of the shortest wait, within 25 ms and 1 s', async (t) => {
  t.equal(tickMillisFor(settings({ quietMillis: 1000 }, 3000)), 250);
  t.equal(tickMillisFor(settings({ quietMillis: 40 }, 0)), 25);
  t.equal(tickMillisFor({ liveness: undefined, connectTimeoutMillis: 20_000 }), 1000);
});

t.test('start() again, as the anchor set calls it on every apply, does not hold the timer back', async (t) => {
  const anchor = new FakeAnchor();
  const conn = anchor.current!;
  const w = new LivenessWatch<Anchor>(
    { liveness: { quietMillis: 40, pingTimeoutMillis: 1000, minPingIntervalMillis: 300_000 }, connectTimeoutMillis: 0 },
    { anchors: () => [anchor as unknown as Anchor], frozen: () => undefined, connectTimedOut: () => undefined },
  );
  t.teardown(() => w.stop());
  // Applies every 5 ms, faster than the 25 ms tick.
  for (let i = 0; i < 40; i++) {
    w.start();
    await sleep(5);
  }
  t.equal(conn.sent, 1, 'the timer ticked: the silent connection was pinged');
});
