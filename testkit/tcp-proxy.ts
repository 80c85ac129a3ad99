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
// - resume(): frozen connections flow again; new connections are forwarded again.
// - close():  destroy everything and close the listener (idempotent).

import net from 'node:net';

export interface TcpProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Port to listen on (127.0.0.1). Default: a free port. */
  port?: number;
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
  /** Undo pause() / cut(). */
  resume(): void;
  /** Destroy everything and close the listener. Idempotent. */
  close(): Promise<void>;
  /** Number of live client<->target connection pairs. */
  connectionCount(): number;
  /** Bytes forwarded from the target to clients so far (shows which proxy carries a stream). */
  bytesToClient(): number;
}

type Mode = 'flowing' | 'paused' | 'cut';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  frozen: boolean;
  /** One side closed while frozen: propagate on resume (a frozen link carries no FIN/RST). */
  pendingClose: boolean;
  closed: boolean;
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
  let closing: Promise<void> | null = null;
  let bytesDown = 0;

  const closePair = (pair: Pair, hard: boolean): void => {
    if (pair.closed) return;
    pair.closed = true;
    pairs.delete(pair);
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
    const upstream = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true });
    upstream.on('error', () => {});
    const pair: Pair = { client, upstream, frozen: false, pendingClose: false, closed: false };
    pairs.add(pair);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
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

  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,

    pause() {
      if (closing) return;
      mode = 'paused';
      for (const pair of pairs) {
        pair.frozen = true;
        pair.client.pause();
        pair.upstream.pause();
      }
    },

    cut() {
      if (closing) return;
      mode = 'cut';
      for (const pair of [...pairs]) closePair(pair, true);
    },

    resume() {
      if (closing) return;
      mode = 'flowing';
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
  };
}
