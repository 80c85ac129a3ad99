// An HTTP/2 frame log for one proxied connection (cleartext h2c with prior knowledge, as
// gRPC uses), and pure functions over such logs. testkit/tcp-proxy.ts feeds it the bytes
// it forwards when started with `http2Frames: true`; specs can feed it bytes by hand.
//
// Only what keepalive and GOAWAY checks need is kept: client PINGs (not ACKs), server
// PING ACKs, server HEADERS and DATA, server GOAWAYs. Every other frame is only counted.
// Timestamps are performance.now() (monotonic milliseconds, the clock of the process that
// runs the proxy): `at` is when the chunk that completed the frame passed the proxy.
//
// The parser never throws and never copies a frame's payload except for PING and GOAWAY,
// so it costs little next to the forwarding; on bytes that are not HTTP/2 it stops and
// records why in parseError.

/** What a client sends first: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 section 3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** The GOAWAY error code a grpc-go server sends with debug data "too_many_pings". */
export const ENHANCE_YOUR_CALM = 0xb;

const FRAME_HEADER_BYTES = 9;
/** ACK on PING and SETTINGS, END_STREAM on DATA and HEADERS: the same bit. */
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
/** GOAWAY debug data kept per frame; the rest is skipped (it can be up to 16 MiB). */
const MAX_GOAWAY_DEBUG_BYTES = 1024;

/** One frame as parsed: its header, and the payload of PING and GOAWAY frames only. */
export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  /** The payload length from the header (what was kept of `payload` may be less). */
  length: number;
  payload?: Buffer;
}

/**
 * An incremental parser for one direction of an HTTP/2 connection. Frames may be split
 * across chunks anywhere, several may share a chunk. With `expectPreface` (the client's
 * direction) the 24-byte preface must come first. The first frame must be SETTINGS.
 */
export class FrameParser {
  #prefaceLeft: number;
  readonly #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** The frame whose payload is being read, if any. */
  #frame: RawFrame | undefined;
  #payloadLeft = 0;
  #kept: Buffer | undefined;
  #keptFill = 0;
  #sawFirstFrame = false;
  #error: string | undefined;
  readonly #onFrame: (frame: RawFrame) => void;

  constructor(expectPreface: boolean, onFrame: (frame: RawFrame) => void) {
    this.#prefaceLeft = expectPreface ? H2_PREFACE.length : 0;
    this.#onFrame = onFrame;
  }

  /** Why parsing stopped (the bytes are not HTTP/2), or undefined. */
  get error(): string | undefined {
    return this.#error;
  }

  push(chunk: Buffer): void {
    let i = 0;
    const end = chunk.length;
    while (i < end && this.#error === undefined) {
      if (this.#prefaceLeft > 0) {
        const from = H2_PREFACE.length - this.#prefaceLeft;
        const take = Math.min(this.#prefaceLeft, end - i);
        if (H2_PREFACE.compare(chunk, i, i + take, from, from + take) !== 0) {
          this.#error = `no HTTP/2 client preface (byte ${from + 1} of it differs)`;
          return;
        }
        this.#prefaceLeft -= take;
        i += take;
      } else if (this.#frame !== undefined) {
        // Payload: skipped, except the bytes kept for PING and GOAWAY.
        const take = Math.min(this.#payloadLeft, end - i);
        if (this.#kept !== undefined && this.#keptFill < this.#kept.length) {
          const copied = chunk.copy(this.#kept, this.#keptFill, i, i + Math.min(take, this.#kept.length - this.#keptFill));
          this.#keptFill += copied;
        }
        this.#payloadLeft -= take;
        i += take;
        if (this.#payloadLeft === 0) this.#finishFrame();
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, end - i);
        chunk.copy(this.#header, this.#headerFill, i, i + take);
        this.#headerFill += take;
        i += take;
        if (this.#headerFill === FRAME_HEADER_BYTES) this.#startFrame();
      }
    }
  }

  #startFrame(): void {
    const h = this.#header;
    this.#headerFill = 0;
    const frame: RawFrame = {
      length: h.readUIntBE(0, 3),
      type: h[3]!,
      flags: h[4]!,
      streamId: h.readUInt32BE(5) & 0x7fffffff,
    };
    // Cheap sanity check: every HTTP/2 endpoint starts with SETTINGS on stream 0; an
    // HTTP/1.1 answer or TLS record fails it instead of producing junk frames.
    if (!this.#sawFirstFrame && (frame.type !== FrameType.SETTINGS || frame.streamId !== 0)) {
      this.#error = `first frame is not SETTINGS (type ${frame.type}, stream ${frame.streamId})`;
      return;
    }
    this.#sawFirstFrame = true;
    this.#frame = frame;
    this.#payloadLeft = frame.length;
    this.#keptFill = 0;
    if (frame.type === FrameType.PING) this.#kept = Buffer.alloc(Math.min(frame.length, 8));
    else if (frame.type === FrameType.GOAWAY) this.#kept = Buffer.alloc(Math.min(frame.length, 8 + MAX_GOAWAY_DEBUG_BYTES));
    else this.#kept = undefined;
    if (frame.length === 0) this.#finishFrame();
  }

  #finishFrame(): void {
    const frame = this.#frame!;
    if (this.#kept !== undefined) frame.payload = this.#kept;
    this.#frame = undefined;
    this.#kept = undefined;
    this.#onFrame(frame);
  }
}

/** A client PING that is not an ACK. `opaque`: its 8 bytes in hex. */
export interface ClientPing {
  kind: 'ping';
  at: number;
  opaque: string;
}
/** A server PING ACK (the answer to the client PING with the same opaque). */
export interface ServerPingAck {
  kind: 'ping-ack';
  at: number;
  opaque: string;
}
export interface ServerHeaders {
  kind: 'headers';
  at: number;
  streamId: number;
  endStream: boolean;
}
export interface ServerData {
  kind: 'data';
  at: number;
  streamId: number;
  length: number;
  endStream: boolean;
}
export interface ServerGoaway {
  kind: 'goaway';
  at: number;
  lastStreamId: number;
  /** 0 NO_ERROR, 0xb ENHANCE_YOUR_CALM, ... */
  errorCode: number;
  /** Debug data as UTF-8 (grpc-go: "too_many_pings"); the first 1 KiB at most. */
  debug: string;
}
export type FrameEvent = ClientPing | ServerPingAck | ServerHeaders | ServerData | ServerGoaway;

/** The frame log of one client<->server connection pair. */
export interface ConnectionFrames {
  /** 1, 2, ... in the order the proxy accepted the connections. */
  id: number;
  /** performance.now() when the proxy accepted the client's connection. */
  acceptedAt: number;
  /** The pair was closed (by either side, cut() or close()). */
  closed: boolean;
  closedAt?: number;
  /** The recorded frames of both directions, in the order they passed. */
  events: FrameEvent[];
  /** Every frame parsed, recorded or not. */
  frameCounts: { client: number; server: number };
  /** Set when a direction was not HTTP/2; that direction is not parsed any further. */
  parseError?: string;
}

export interface ConnectionRecorder {
  readonly conn: ConnectionFrames;
  fromClient(chunk: Buffer): void;
  fromServer(chunk: Buffer): void;
  markClosed(): void;
}

/** A frame log for one connection; feed it the bytes of each direction as they pass. */
export function recordConnection(id: number, now: () => number = () => performance.now()): ConnectionRecorder {
  const conn: ConnectionFrames = { id, acceptedAt: now(), closed: false, events: [], frameCounts: { client: 0, server: 0 } };
  // One timestamp per chunk: every frame it completes passed at that moment.
  let at = 0;
  const client = new FrameParser(true, (f) => {
    conn.frameCounts.client += 1;
    if (f.type === FrameType.PING && (f.flags & FLAG_ACK) === 0) conn.events.push({ kind: 'ping', at, opaque: f.payload!.toString('hex') });
  });
  const server = new FrameParser(false, (f) => {
    conn.frameCounts.server += 1;
    switch (f.type) {
      case FrameType.PING:
        if ((f.flags & FLAG_ACK) !== 0) conn.events.push({ kind: 'ping-ack', at, opaque: f.payload!.toString('hex') });
        break;
      case FrameType.HEADERS:
        conn.events.push({ kind: 'headers', at, streamId: f.streamId, endStream: (f.flags & FLAG_END_STREAM) !== 0 });
        break;
      case FrameType.DATA:
        conn.events.push({ kind: 'data', at, streamId: f.streamId, length: f.length, endStream: (f.flags & FLAG_END_STREAM) !== 0 });
        break;
      case FrameType.GOAWAY: {
        const p = f.payload!;
        // A GOAWAY shorter than 8 bytes is a protocol error; record what is there.
        conn.events.push({
          kind: 'goaway',
          at,
          lastStreamId: p.length >= 4 ? p.readUInt32BE(0) & 0x7fffffff : -1,
          errorCode: p.length >= 8 ? p.readUInt32BE(4) : -1,
          debug: p.subarray(8).toString('utf8'),
        });
        break;
      }
    }
  });
  const feed = (parser: FrameParser, side: string, chunk: Buffer): void => {
    if (parser.error !== undefined) return;
    at = now();
    parser.push(chunk);
    if (parser.error !== undefined) conn.parseError = [conn.parseError, `${side}: ${parser.error}`].filter(Boolean).join('; ');
  };
  return {
    conn,
    fromClient: (chunk) => feed(client, 'client', chunk),
    fromServer: (chunk) => feed(server, 'server', chunk),
    markClosed() {
      if (conn.closed) return;
      conn.closed = true;
      conn.closedAt = now();
    },
  };
}

/** A client ping that came too soon, with the time since the previous client ping. */
export type QuickPing = ClientPing & { gapMillis: number };

/**
 * The client pings that came less than `minGapMillis` after the previous client ping on
 * the same connection with no server HEADERS or DATA frame in between: the pings a
 * grpc-go server with that keepalive MinTime counts as strikes (a server write resets
 * the count, and the first ping after it only sets the reference time).
 */
export function pingGaps(conn: Pick<ConnectionFrames, 'events'>, minGapMillis: number): QuickPing[] {
  const quick: QuickPing[] = [];
  let previous: number | undefined;
  for (const event of conn.events) {
    if (event.kind === 'headers' || event.kind === 'data') {
      previous = undefined;
    } else if (event.kind === 'ping') {
      if (previous !== undefined && event.at - previous < minGapMillis) quick.push({ ...event, gapMillis: event.at - previous });
      previous = event.at;
    }
  }
  return quick;
}

/** Every server GOAWAY on these connections, with its connection's id, in time order. */
export function goaways(conns: readonly Pick<ConnectionFrames, 'id' | 'events'>[]): (ServerGoaway & { connId: number })[] {
  const all: (ServerGoaway & { connId: number })[] = [];
  for (const conn of conns) {
    for (const event of conn.events) if (event.kind === 'goaway') all.push({ ...event, connId: conn.id });
  }
  return all.sort((a, b) => a.at - b.at);
}
