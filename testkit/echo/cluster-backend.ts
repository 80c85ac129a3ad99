// Starts testkit/echo/cluster-server.ts (a Node cluster primary and its workers sharing
// one port) as a child process, and stops all of it again: kill() ends the primary,
// which kills its workers, and then makes sure no worker pid it reported is left. The
// primary is also killed when this process exits, and it stops its workers by itself
// when this process goes away.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killOnExit } from './backend.js';

const SCRIPT = fileURLToPath(new URL('./cluster-server.js', import.meta.url));

export interface ClusterBackendOptions {
  workers?: number;
  /** 'rr': the primary accepts and deals connections out in turn (Node's default on Linux); 'none': the kernel picks a worker. */
  scheduling?: 'rr' | 'none';
}

interface ListeningMessage {
  type: 'listening';
  port: number;
  workerPids: number[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class ClusterBackend {
  port = 0;
  workerPids: number[] = [];
  #child: ChildProcess | undefined;
  readonly #options: ClusterBackendOptions;

  constructor(options: ClusterBackendOptions = {}) {
    this.#options = options;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CLUSTER_WORKERS: String(this.#options.workers ?? 2),
      CLUSTER_SCHED: this.#options.scheduling ?? 'rr',
      BACKEND_PORT: '0',
    };
    const child = fork(SCRIPT, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child = child;
    killOnExit(child);
    const listening = await new Promise<ListeningMessage>((resolve, reject) => {
      const settle = (error: Error | undefined, message?: ListeningMessage): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        if (error) reject(error);
        else resolve(message!);
      };
      const onMessage = (m: ListeningMessage): void => {
        if (m.type === 'listening') settle(undefined, m);
      };
      // A server that never says it listens must not hang the caller (who then calls kill()).
      const timer = setTimeout(() => settle(new Error('cluster server did not listen within 15 s')), 15_000);
      child.on('message', onMessage);
      child.once('error', (err) => settle(err));
      child.once('exit', (code, signal) => settle(new Error(`cluster server exited (${signal ?? code}) before listening`)));
    });
    this.port = listening.port;
    this.workerPids = listening.workerPids;
  }

  /** Stops the primary (SIGTERM: it kills its workers first; SIGKILL after 3 s) and any worker still left. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    // A primary killed outright leaves its workers to notice the broken IPC channel; do not wait on that.
    for (const pid of this.workerPids) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    this.workerPids = [];
  }
}
