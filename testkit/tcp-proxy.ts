// A TCP proxy on 127.0.0.1 for fault injection between a client and etcd (or any server).
//
//   const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort });
//   t.teardown(() => proxy.close());
//
// - pause():  freeze the existing connections without closing them. Bytes are neither
//             delivered nor dropped (both sockets stop reading, so TCP back-pressure
//             builds up): to the client it looks like a half-open connection. Connections
//             accepted while paused are forwarded normally, like a fresh TCP connection
//             would be in the real half-open case.
// - cut():    reset every existing connection at once (RST) and refuse new ones (accept
//             and reset immediately) until resume().
// - blackhole(): freeze the existing connections as pause() does, and accept new ones but
//             never read from them or connect upstream: to the client it looks like a host
//             whose packets vanish after the TCP handshake (a gRPC client never sees the
//             server's SETTINGS). blackholedCount() counts the connections accepted so.
// - resume(): frozen connections flow again; new connections are forwarded again. The
//             connections accepted while black-holed are reset (RST) then: they have no
//             upstream, as a real server would answer RST to a connection it never saw,
//             and the client reconnects at once instead of after its connect timeout.
//             (pause() after blackhole() forwards new connections and leaves those silent.)
// - close():  destroy everything and close the listener (idempotent).
//
// With `http2Frames: true`, the bytes of each pair are also parsed as HTTP/2 (h2c) frames
// in both directions as they pass (forwarded unchanged) into frames(), stamped with
// performance.now() (see testkit/h2-frames.ts). Without it nothing is parsed.

import net from 'node:net';
import { recordConnection, type ConnectionFrames, type ConnectionRecorder } from './h2-frames.js';

export type { ConnectionFrames } from './h2-frames.js';

export interface TcpProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Port to listen on (127.0.0.1). Default: a free port. */
  port?: number;
  /** Log the HTTP/2 frames of every pair (h2c with prior knowledge, as gRPC uses) for frames(). Default false. */
  http2Frames?: boolean;
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT`, usable as an etcd endpoint. */
  readonly url: string;
  /** Freeze the existing connection pairs (half-open as seen by the client). */
  pause(): void;
  /** Reset all existing connection pairs and refuse new connections until resume(). */
  cut(): void;
  /** Freeze the existing pairs; accept new connections without forwarding anything, until resume(). */
  blackhole(): void;
  /** Undo pause() / cut() / blackhole() (resetting the connections accepted while black-holed). */
  resume(): void;
  /** Destroy everything and close the listener. Idempotent. */
  close(): Promise<void>;
  /** Number of live client<->target connection pairs. */
  connectionCount(): number;
  /** Bytes forwarded from the target to clients so far (shows which proxy carries a stream). */
  bytesToClient(): number;
  /** Connections accepted while black-holed so far (they are not pairs, nor in frames()). */
  blackholedCount(): number;
  /**
   * The HTTP/2 frame log, one entry per pair in accept order, closed ones included (a
   * snapshot). Throws unless started with `http2Frames: true`.
   */
  frames(): ConnectionFrames[];
}

type Mode = 'flowing' | 'paused' | 'cut' | 'blackhole';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  frozen: boolean;
  /** One side closed while frozen: propagate on resume (a frozen link carries no FIN/RST). */
  pendingClose: boolean;
  closed: boolean;
  frames: ConnectionRecorder | undefined;
}

/**
 * Close with RST where that is safe, else a plain destroy.
 *
 * Never resetAndDestroy() a socket whose writable side was ended: if its shutdown is still
 * pending, libuv's uv_tcp_close_reset() fails with EINVAL, yet Node 20 marks the handle as
 * closing anyway, so it is never closed and the process spins at 100% CPU in
 * Environment::CleanupHandles() when it exits (seen intermittently here).
 */
function reset(socket: net.Socket): void {
  try {
    if (
      !socket.destroyed &&
      !socket.connecting &&
      !socket.writableEnded &&
      typeof socket.resetAndDestroy === 'function'
    ) {
      socket.resetAndDestroy();
      return;
    }
  } catch {
    // fall through to a plain destroy
  }
  socket.destroy();
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const { targetHost, targetPort } = options;
  let mode: Mode = 'flowing';
  const pairs = new Set<Pair>();
  /** Sockets refused while cut, until their reset completes. */
  const refused = new Set<net.Socket>();
  /** Sockets accepted while black-holed: never read, no upstream. */
  const silent = new Set<net.Socket>();
  let blackholed = 0;
  let closing: Promise<void> | null = null;
  let bytesDown = 0;
  const frameLogs: ConnectionRecorder[] | undefined = options.http2Frames ? [] : undefined;

  const closePair = (pair: Pair, hard: boolean): void => {
    if (pair.closed) return;
    pair.closed = true;
    pairs.delete(pair);
    pair.frames?.markClosed();
    if (hard) {
      reset(pair.client);
      reset(pair.upstream);
    } else {
      pair.client.destroy();
      pair.upstream.destroy();
    }
  };

  /** Forward `from` -> `to` with back-pressure; honour freezing. */
  const forward = (pair: Pair, from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (to === pair.client) bytesDown += chunk.length;
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!pair.frozen && !pair.closed) from.resume();
    });
    from.on('end', () => {
      // Half-close: pass the FIN on once everything before it was forwarded.
      if (!to.destroyed) to.end();
    });
  };

  const onSideGone = (pair: Pair): void => {
    if (pair.closed) return;
    if (pair.frozen) {
      pair.pendingClose = true;
      return;
    }
    closePair(pair, false);
  };

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    client.on('error', () => {});
    if (mode === 'cut' || closing) {
      refused.add(client);
      client.on('close', () => refused.delete(client));
      reset(client);
      return;
    }
    if (mode === 'blackhole') {
      // Left paused (pauseOnConnect): its bytes stay in the kernel, unanswered, and even
      // its FIN goes unnoticed, as everything the client sends into a black hole.
      blackholed += 1;
      silent.add(client);
      client.on('close', () => silent.delete(client));
      return;
    }
    const upstream = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true });
    upstream.on('error', () => {});
    const pair: Pair = { client, upstream, frozen: false, pendingClose: false, closed: false, frames: undefined };
    pairs.add(pair);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
    if (frameLogs) {
      // Separate listeners, added after forward()'s: a chunk is written on before it is
      // parsed, and without the option the data path has no extra code at all.
      const recorder = recordConnection(frameLogs.length + 1);
      frameLogs.push(recorder);
      pair.frames = recorder;
      client.on('data', recorder.fromClient);
      upstream.on('data', recorder.fromServer);
    }
    client.on('close', () => onSideGone(pair));
    upstream.on('close', () => onSideGone(pair));
    client.resume();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: options.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('tcp proxy: unexpected listen address');
  const port = address.port;

  const freezeAll = (): void => {
    for (const pair of pairs) {
      pair.frozen = true;
      pair.client.pause();
      pair.upstream.pause();
    }
  };
  const resetSilent = (): void => {
    for (const socket of silent) reset(socket);
    silent.clear();
  };

  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,

    pause() {
      if (closing) return;
      mode = 'paused';
      freezeAll();
    },

    cut() {
      if (closing) return;
      mode = 'cut';
      for (const pair of [...pairs]) closePair(pair, true);
      resetSilent();
    },

    blackhole() {
      if (closing) return;
      mode = 'blackhole';
      freezeAll();
    },

    resume() {
      if (closing) return;
      mode = 'flowing';
      resetSilent();
      for (const pair of [...pairs]) {
        if (!pair.frozen) continue;
        pair.frozen = false;
        if (pair.pendingClose) {
          closePair(pair, false);
          continue;
        }
        // Resume reading only where the other side is not asking for back-pressure.
        if (!pair.upstream.writableNeedDrain) pair.client.resume();
        if (!pair.client.writableNeedDrain) pair.upstream.resume();
      }
    },

    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const pair of [...pairs]) closePair(pair, true);
        for (const socket of refused) socket.destroy();
        for (const socket of silent) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },

    connectionCount() {
      return pairs.size;
    },

    bytesToClient() {
      return bytesDown;
    },

    blackholedCount() {
      return blackholed;
    },

    frames() {
      if (!frameLogs) throw new Error('tcp proxy: frames() needs startTcpProxy({ http2Frames: true })');
      return frameLogs.map(({ conn }) => ({ ...conn, events: [...conn.events], frameCounts: { ...conn.frameCounts } }));
    },
  };
}
