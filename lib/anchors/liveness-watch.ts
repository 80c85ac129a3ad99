/**
 * LivenessWatch: finds the connections that stopped answering without a word (a frozen
 * VM, a host that lost power, a path or an L4 balancer that black-holes packets: no RST
 * comes, and grpc-js keeps the connection READY), and the connection attempts that hang.
 * One per anchor set; one timer ticks over all of its anchors.
 *
 * A silent connection. An anchor is watched while it has streams in use (leases, calls)
 * and its connection has HTTP/2 streams open. When nothing at all has been read from the
 * connection for `quietMillis`, it sends one HTTP/2 PING, if the ping rule below allows
 * one. An ACK (or any byte) within `pingTimeoutMillis` shows the connection is alive, and
 * the call that waits is merely slow: nothing happens. Neither: the connection is
 * dropped. Its calls end with UNAVAILABLE, the anchor is out of rotation from that
 * moment, and it reconnects at once on a new connection (grpc-js makes it; with health
 * checks it waits for its first SERVING). So a dead connection is out of rotation at most
 * quietMillis + pingTimeoutMillis + two ticks after the later of its last byte and the
 * first call that waits on it, when the ping rule allows a ping then; when it does not
 * (a ping was answered and the server has written no message since), the next ping
 * waits for minPingIntervalMillis.
 *
 * The ping rule, for servers that police pings (grpc-go: a ping less than MinTime (5 min)
 * after the previous one is a strike unless the server wrote HEADERS or DATA in between;
 * none at all without an open stream; GOAWAY ENHANCE_YOUR_CALM after 2 strikes). A ping
 * is sent only while the connection has a stream open, and only if
 *   - it is the first on this connection, or
 *   - `minPingIntervalMillis` have passed since the previous ping was answered (the ACK
 *     comes after the server saw that ping, so the server's own gap is at least as long), or
 *   - a gRPC message arrived after that ACK (a DATA frame the server wrote after it had
 *     seen the previous ping, which resets its strikes).
 * The rule holds per connection, whoever pings: the log of a connection's pings is kept
 * with the connection (grpc-js shares subchannels between channels to the same target),
 * and one ping at a time is out on it. A busy connection reads all the time and never
 * pings; a quiet pool (no lease or call in use) sends none.
 *
 * A hanging attempt. An anchor CONNECTING for `connectTimeoutMillis` gives its attempt up
 * and tries again at once (grpc-js itself has no connect deadline at all).
 */
import type { Anchor } from './anchor.js';

export interface LivenessSettings {
  /** Silence (nothing read while streams are open) before a ping. */
  readonly quietMillis: number;
  /** How long a ping's ACK may take before the connection counts as dead. */
  readonly pingTimeoutMillis: number;
  /** The least time between two pings on a connection when the server wrote nothing in between. */
  readonly minPingIntervalMillis: number;
}

export const DEFAULT_LIVENESS: LivenessSettings = { quietMillis: 1000, pingTimeoutMillis: 2000, minPingIntervalMillis: 300_000 };
export const DEFAULT_CONNECT_TIMEOUT_MILLIS = 3000;

export interface LivenessWatchSettings {
  /** Silent-connection checks; undefined: off. */
  readonly liveness: LivenessSettings | undefined;
  /** Connect deadline; 0: off. */
  readonly connectTimeoutMillis: number;
}

export interface LivenessHooks<A> {
  /** The anchors to watch now (active and draining). */
  anchors(): Iterable<A>;
  /** `anchor`'s connection was dropped for silence. */
  frozen(anchor: A, detail: string): void;
  /** `anchor`'s connection attempt was given up. */
  connectTimedOut(anchor: A, detail: string): void;
}

export interface LivenessCounts {
  /** Pings sent. */
  readonly pings: number;
  /** Connections dropped because a ping went unanswered. */
  readonly frozen: number;
  /** Connection attempts given up at the connect deadline. */
  readonly connectTimeouts: number;
}

interface Probe {
  readonly bytes: number;
  readonly timer: NodeJS.Timeout;
}

/** What the watch knows of one connection. */
interface ConnectionRecord {
  readonly id: object;
  bytes: number;
  /** Since when nothing was read while streams waited; undefined while nothing waits. */
  quietSince: number | undefined;
  probe: Probe | undefined;
}

/** The tick: a quarter of the shortest wait, between 25 ms and 1 s. */
export function tickMillisFor(settings: LivenessWatchSettings): number {
  const waits = [settings.liveness?.quietMillis, settings.connectTimeoutMillis || undefined].filter((w): w is number => w !== undefined);
  return Math.min(1000, Math.max(25, Math.floor(Math.min(...waits) / 4)));
}

/** Whether the ping rule allows a ping now (see the header). */
export function pingAllowed(answeredAt: number | undefined, messagesAtAnswer: number, messagesNow: number, now: number, minIntervalMillis: number): boolean {
  return answeredAt === undefined || now - answeredAt >= minIntervalMillis || messagesNow > messagesAtAnswer;
}

export class LivenessWatch<A extends Anchor> {
  #settings: LivenessWatchSettings;
  readonly #hooks: LivenessHooks<A>;
  readonly #clock: () => number;
  readonly #records = new WeakMap<A, ConnectionRecord>();
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #pings = 0;
  #frozen = 0;
  #connectTimeouts = 0;

  constructor(settings: LivenessWatchSettings, hooks: LivenessHooks<A>, clock: () => number = () => performance.now()) {
    this.#settings = settings;
    this.#hooks = hooks;
    this.#clock = clock;
  }

  /** Whether there is anything to watch (checks on, or a connect deadline). */
  get #enabled(): boolean {
    return this.#settings.liveness !== undefined || this.#settings.connectTimeoutMillis > 0;
  }

  counts(): LivenessCounts {
    return { pings: this.#pings, frozen: this.#frozen, connectTimeouts: this.#connectTimeouts };
  }

  /** New settings from now on (the native policy's config can change them). */
  configure(settings: LivenessWatchSettings): void {
    this.#settings = settings;
    if (this.#started) this.#arm();
  }

  /** Starts the timer; once started, calling it again changes nothing (the set calls it on every apply). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#arm();
  }

  stop(): void {
    this.#started = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#enabled) return;
    this.#timer = setInterval(() => this.tick(), tickMillisFor(this.#settings));
    // The watch never keeps a process alive.
    this.#timer.unref();
  }

  /** One pass over the anchors (the timer's; specs call it with their own clock). */
  tick(): void {
    const now = this.#clock();
    for (const anchor of this.#hooks.anchors()) {
      if (anchor.closed) continue;
      const attemptSince = anchor.attemptSince();
      if (attemptSince !== undefined) this.#checkAttempt(anchor, attemptSince, now);
      else if (anchor.state === 'READY' && this.#settings.liveness !== undefined) this.#checkConnection(anchor, now, this.#settings.liveness);
      // Not READY: what was known of its connection is over (and must not keep it alive).
      else if (this.#records.get(anchor)?.probe === undefined) this.#records.delete(anchor);
    }
  }

  #checkAttempt(anchor: A, since: number, now: number): void {
    const limit = this.#settings.connectTimeoutMillis;
    if (limit <= 0 || now - since < limit) return;
    const detail = `no connection to ${anchor.address} within connectTimeoutMillis (${limit} ms)`;
    if (!anchor.abortConnect(`anchorpool: ${detail}`)) return;
    this.#connectTimeouts += 1;
    this.#hooks.connectTimedOut(anchor, detail);
  }

  #checkConnection(anchor: A, now: number, settings: LivenessSettings): void {
    let record = this.#records.get(anchor);
    // Nothing in use on it: nothing to check, at the cost of one read.
    if (anchor.streams === 0 && record?.probe === undefined) {
      if (record !== undefined) record.quietSince = undefined;
      return;
    }
    const connection = anchor.connection();
    if (connection === undefined) return;
    if (record === undefined || record.id !== connection.id) {
      record = { id: connection.id, bytes: connection.bytesRead(), quietSince: undefined, probe: undefined };
      this.#records.set(anchor, record);
    }
    // Our ping is out: its timer decides.
    if (record.probe !== undefined) return;
    const bytes = connection.bytesRead();
    if (connection.openStreams() === 0) {
      record.quietSince = undefined;
      record.bytes = bytes;
      return;
    }
    if (bytes !== record.bytes || record.quietSince === undefined) {
      record.bytes = bytes;
      record.quietSince = now;
      return;
    }
    if (now - record.quietSince < settings.quietMillis) return;
    // One ping at a time per connection, whoever sent it (another channel's watch may share it).
    const log = connection.pings;
    if (log.inFlight || !pingAllowed(log.answeredAt, log.messagesAtAnswer, connection.messagesReceived(), now, settings.minPingIntervalMillis)) return;

    const current = record;
    const probe: Probe = {
      bytes,
      // The verdict waits for the I/O already received (setImmediate runs after the poll
      // phase): a late timer on a busy event loop must not beat an ACK that is in.
      timer: setTimeout(() => setImmediate(() => this.#verdict(anchor, current, probe, settings)), settings.pingTimeoutMillis),
    };
    probe.timer.unref();
    record.probe = probe;
    connection.ping((ok) => {
      if (current.probe !== probe) return;
      clearTimeout(probe.timer);
      current.probe = undefined;
      // Answered: alive, and quiet from now on. Not sent, or closed first: nothing to judge.
      if (ok) {
        current.bytes = connection.bytesRead();
        current.quietSince = this.#clock();
      }
    });
    if (log.inFlight) this.#pings += 1;
  }

  #verdict(anchor: A, record: ConnectionRecord, probe: Probe, settings: LivenessSettings): void {
    if (record.probe !== probe) return;
    record.probe = undefined;
    const connection = anchor.closed ? undefined : anchor.connection();
    if (connection === undefined || connection.id !== record.id) return;
    // Bytes arrived but no ACK yet: the connection delivers. The ping stays in flight (no
    // other goes out before its ACK, which the ping rule is counted from).
    if (connection.bytesRead() !== probe.bytes) {
      record.bytes = connection.bytesRead();
      record.quietSince = this.#clock();
      return;
    }
    this.#frozen += 1;
    const detail = `no answer from ${anchor.address} (${anchor.key}#${anchor.index}) to a ping within ${settings.pingTimeoutMillis} ms after ${settings.quietMillis} ms of silence with streams open`;
    this.#hooks.frozen(anchor, detail);
    connection.drop();
  }
}

/** The log line for a connection the watch let go. */
export function describeLoss(reason: 'frozen' | 'connect-timeout', detail: string): string {
  return `${detail}; ${reason === 'frozen' ? 'connection dropped, reconnecting' : 'trying again'}`;
}

/** Whether two settings of the watch are the same. */
export function sameLivenessSettings(a: LivenessWatchSettings, b: LivenessWatchSettings): boolean {
  const [x, y] = [a.liveness, b.liveness];
  const sameChecks = x === y || (x !== undefined && y !== undefined && x.quietMillis === y.quietMillis && x.pingTimeoutMillis === y.pingTimeoutMillis && x.minPingIntervalMillis === y.minPingIntervalMillis);
  return sameChecks && a.connectTimeoutMillis === b.connectTimeoutMillis;
}
