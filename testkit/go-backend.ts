// A real grpc-go Echo backend (testkit/go-echo/main.go) in a child process, for tests that
// need what grpc-js servers lack: grpc-go's keepalive enforcement (a client pinging more
// often than the policy allows gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings").
// The binary is built once per version of main.go, with Debian's golang-go and
// golang-google-grpc-dev (offline, GOPATH mode), into a cache directory shared by every
// process. The child is killed when this process exits, and exits by itself when its
// stdin closes.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { killOnExit } from './echo/backend.js';

// From build/testkit/ back to the source tree: tsc does not copy .go files.
const SOURCE = fileURLToPath(new URL('../../testkit/go-echo/main.go', import.meta.url));
const GOPATH = '/usr/share/gocode';
const GRPC_GO = `${GOPATH}/src/google.golang.org/grpc`;

export const GO_TOOLCHAIN_MISSING =
  `the grpc-go test backend needs the Go toolchain and grpc-go sources (\`go\` on PATH and ${GRPC_GO}): ` +
  'apt-get install golang-go golang-google-grpc-dev (.ci/run installs them)';

/** Whether `go` runs and Debian's grpc-go sources are there; if not, GO_TOOLCHAIN_MISSING says what to install. */
export function goToolchainAvailable(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0 && existsSync(GRPC_GO);
}

let built: Promise<string> | undefined;

/** Compiles main.go (once per process, and once per content across processes); resolves with the binary's path. */
export function buildGoEcho(): Promise<string> {
  built ??= build().catch((err: unknown) => {
    built = undefined; // a failed build may be retried
    throw err;
  });
  return built;
}

async function build(): Promise<string> {
  const hash = createHash('sha256').update(await readFile(SOURCE)).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `anchorpool-go-echo-${hash}`);
  const binary = path.join(dir, 'echo-go');
  if (existsSync(binary)) return binary;
  if (!goToolchainAvailable()) throw new Error(GO_TOOLCHAIN_MISSING);
  await mkdir(dir, { recursive: true });
  // Built under a name of its own and renamed: two processes building at once each
  // rename a complete binary, never a half-written one.
  const partial = `${binary}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  const env = { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: path.join(dir, 'gocache'), GOFLAGS: '' };
  try {
    await new Promise<void>((resolve, reject) => {
      execFile('go', ['build', '-o', partial, 'main.go'], { cwd: path.dirname(SOURCE), env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`go build of ${SOURCE} failed (${err.message.split('\n')[0]}):\n${stderr}${stdout}`));
        else resolve();
      });
    });
    await rename(partial, binary);
  } finally {
    await rm(partial, { force: true });
  }
  return binary;
}

export interface GoBackendOptions {
  name?: string;
  /** Port to listen on; default a free one (kept across restart()). */
  port?: number;
  /** keepalive.EnforcementPolicy MinTime; default none passed, so grpc-go's 5 min applies. */
  minPingMillis?: number;
}

export interface GoBackendStats {
  connectionsOpen: number;
  /** Connections accepted since the process started. */
  connectionsTotal: number;
  /** Echo calls received (health calls are not counted). */
  calls: number;
}

interface Waiter {
  event: string;
  resolve(fields: Record<string, unknown>): void;
  reject(err: Error): void;
}

export class GoBackend {
  readonly name: string;
  port: number;
  #child: ChildProcess | undefined;
  #waiters: Waiter[] = [];
  readonly #minPingMillis: number | undefined;

  constructor(options: GoBackendOptions = {}) {
    this.name = options.name ?? 'backend';
    this.port = options.port ?? 0;
    this.#minPingMillis = options.minPingMillis;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(): Promise<void> {
    const binary = await buildGoEcho();
    const args = ['-name', this.name, '-port', String(this.port)];
    if (this.#minPingMillis !== undefined) args.push('-min-ping-millis', String(this.#minPingMillis));
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    killOnExit(child);
    // Writes to a child that died fail with EPIPE; the exit handler already reports that.
    child.stdin!.on('error', () => undefined);
    // stderr goes on to ours, and its end is kept for the error of an early exit.
    let stderrTail = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => this.#onLine(line));
    child.once('exit', (code, signal) => {
      const err = new Error(`go backend ${this.name} exited (${signal ?? code})${stderrTail ? `: ${stderrTail.trim()}` : ''}`);
      for (const waiter of this.#waiters.splice(0)) waiter.reject(err);
    });
    const listening = this.#next('listening');
    child.once('error', (err) => {
      for (const waiter of this.#waiters.splice(0)) waiter.reject(err);
    });
    this.port = (await listening)['port'] as number;
  }

  /** One JSON line from the child: answers the oldest waiter for that event (answers come in order). */
  #onLine(line: string): void {
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const index = this.#waiters.findIndex((w) => w.event === fields['event']);
    if (index >= 0) this.#waiters.splice(index, 1)[0]!.resolve(fields);
  }

  #next(event: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.#waiters.push({ event, resolve, reject }));
  }

  /** Sends one command line and waits for the child's answer `event`. */
  #ask(command: string, event: string): Promise<Record<string, unknown>> {
    const child = this.#child;
    if (!child || !this.running) return Promise.reject(new Error(`go backend ${this.name} is not running`));
    const answer = this.#next(event);
    child.stdin!.write(`${command}\n`);
    return answer;
  }

  async stats(): Promise<GoBackendStats> {
    const m = await this.#ask('stats', 'stats');
    return { connectionsOpen: m['connectionsOpen'] as number, connectionsTotal: m['connectionsTotal'] as number, calls: m['calls'] as number };
  }

  /** Sets grpc.health.v1's status for '' (the whole server); resolves once Watch streams were told. */
  async setServing(serving: boolean): Promise<void> {
    await this.#ask(serving ? 'serving' : 'not_serving', 'health');
  }

  /** Kills the process (SIGKILL by default) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Starts again on the same port (counters start from zero). */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}

/** Builds the binary if needed and starts a backend; resolves once it listens. */
export async function startGoBackend(options: GoBackendOptions = {}): Promise<GoBackend> {
  const backend = new GoBackend(options);
  await backend.start();
  return backend;
}
