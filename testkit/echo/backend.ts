// Real grpc-js Echo backends in child processes, for tests, benchmarks and the demo.
// Each counts, on the server side, the TCP connections it holds. A backend is killed
// with kill(), and in any case when the process that started it exits.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills `child` with SIGKILL when this process exits, if it still runs then. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) c.kill('SIGKILL');
  });
}

const SCRIPT = fileURLToPath(new URL('./echo-server.js', import.meta.url));

export interface BackendOptions {
  name?: string;
  /** Port to listen on; default a free one (kept across restart()). */
  port?: number;
  maxConcurrentStreams?: number;
  /** How long each Echo call takes (a `sleep:N` request takes N instead). */
  delayMillis?: number;
  /**
   * A process that warms up: for the first `millis` after each server process starts
   * listening (the first start() and every start() or restart() after), an Echo call
   * takes `delayMillis` of this option instead; after that, the backend's own delayMillis.
   */
  warmUp?: { millis: number; delayMillis: number };
  /** Serve TLS only, with this certificate and key (PEM file paths). */
  tls?: { certFile: string; keyFile: string };
  /** false: no grpc.health.v1 service at all (a Watch gets UNIMPLEMENTED). Default true. */
  healthService?: boolean;
  /** The server's grpc.max_connection_age_ms and grpc.max_connection_age_grace_ms. */
  maxConnectionAge?: { millis: number; graceMillis?: number };
}

export interface BackendStats {
  /** Remote ports of the connections the server holds, sorted. */
  connections: number[];
  calls: number;
  maxInFlight: number;
  /** Peak streams (Echo calls and health Watch streams) running at once per connection (the client's ip:port as the server saw it) since the last resetStats(). */
  maxInFlightByConnection: Record<string, number>;
}

export class Backend {
  readonly name: string;
  port = 0;
  #child: ChildProcess | undefined;
  #nextId = 0;
  readonly #options: BackendOptions;

  constructor(options: BackendOptions) {
    this.name = options.name ?? 'backend';
    this.#options = options;
    this.port = options.port ?? 0;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** PID of the current (or last) server process; undefined before start(). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, BACKEND_NAME: this.name, BACKEND_PORT: String(this.port) };
    if (this.#options.maxConcurrentStreams !== undefined) env['BACKEND_MAX_STREAMS'] = String(this.#options.maxConcurrentStreams);
    if (this.#options.delayMillis !== undefined) env['BACKEND_DELAY_MS'] = String(this.#options.delayMillis);
    if (this.#options.healthService === false) env['BACKEND_NO_HEALTH'] = '1';
    const warmUp = this.#options.warmUp;
    if (warmUp !== undefined) {
      env['BACKEND_WARMUP_MS'] = String(warmUp.millis);
      env['BACKEND_WARMUP_DELAY_MS'] = String(warmUp.delayMillis);
    }
    const age = this.#options.maxConnectionAge;
    if (age !== undefined) {
      env['BACKEND_MAX_AGE_MS'] = String(age.millis);
      if (age.graceMillis !== undefined) env['BACKEND_MAX_AGE_GRACE_MS'] = String(age.graceMillis);
    }
    if (this.#options.tls !== undefined) {
      env['BACKEND_TLS_CERT'] = this.#options.tls.certFile;
      env['BACKEND_TLS_KEY'] = this.#options.tls.keyFile;
    }
    const child = fork(SCRIPT, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child = child;
    killOnExit(child);
    this.port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`backend ${this.name} exited (${code}) before listening`)));
      child.on('message', (m: { type: string; port?: number }) => {
        if (m.type === 'listening') resolve(m.port!);
      });
    });
  }

  async stats(): Promise<BackendStats> {
    const m = await this.#ask<BackendStats>('stats');
    return { connections: m.connections, calls: m.calls, maxInFlight: m.maxInFlight, maxInFlightByConnection: m.maxInFlightByConnection };
  }

  /** Starts a new measurement: `calls` from 0, the in-flight peaks from what runs now. */
  async resetStats(): Promise<void> {
    await this.#ask('reset');
  }

  /** Sets what the backend's grpc.health.v1 service reports for `service` ('' = the whole server). */
  async setHealth(status: 'SERVING' | 'NOT_SERVING' | 'UNKNOWN', service = ''): Promise<void> {
    await this.#ask('health', { service, status });
  }

  /** While on, the server answers every Echo call with UNAVAILABLE ("asked to fail by the test"); its health stays as set. */
  async setFailing(on: boolean): Promise<void> {
    await this.#ask('failing', { on });
  }

  /** Sends `{ type, id, ...fields }` over IPC and waits for the server's answer of the same type and id. */
  #ask<T>(type: string, fields: Record<string, unknown> = {}): Promise<T> {
    const child = this.#child;
    if (!child || !this.running) return Promise.reject(new Error(`backend ${this.name} is not running`));
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const done = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      const onMessage = (m: { type: string; id: number } & T) => {
        if (m.type !== type || m.id !== id) return;
        done();
        resolve(m);
      };
      // A server that dies (or is killed) before answering must not leave the caller waiting.
      const onExit = () => {
        done();
        reject(new Error(`backend ${this.name} exited before answering`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      // With a callback, a closed IPC channel is reported here instead of as an 'error' event.
      child.send({ ...fields, type, id }, (err) => {
        if (err) {
          done();
          reject(new Error(`backend ${this.name}: ${err.message}`));
        }
      });
    });
  }

  /**
   * A graceful stop: the server refuses new connections, sends GOAWAY on the open ones,
   * waits for the calls running (grpc-js tryShutdown) and exits. Resolves with how long
   * that took and how many calls it served since the last resetStats().
   */
  async shutdown(): Promise<{ millis: number; calls: number }> {
    const child = this.#child!;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const answer = await this.#ask<{ millis: number; calls: number }>('shutdown');
    await exited;
    return { millis: answer.millis, calls: answer.calls };
  }

  /** Kills the process (SIGKILL by default) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Starts again on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}
