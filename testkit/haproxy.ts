// A real L4 load balancer for tests and scenarios: Debian's HAProxy in TCP mode with
// `balance roundrobin`, started with a generated config on a free loopback port and a
// temporary directory, in the foreground, and killed at stop() (and when this process
// exits). Servers can be declared disabled and enabled later through HAProxy's runtime
// API (its admin socket), as an operator adds pods behind a Service: each new TCP
// connection goes to the next enabled server, and a connection stays where it landed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../etcd-dev/etcd-dev.mjs';
import { registerExitCleanup } from './process-cleanup.js';

export interface HaproxyServer {
  readonly name: string;
  readonly address: string;
  /** Declared disabled: it gets no connection until enable(name). */
  readonly disabled?: boolean;
}

export interface Haproxy {
  /** The frontend clients connect to: 127.0.0.1:port. */
  readonly address: string;
  enable(server: string): Promise<void>;
  disable(server: string): Promise<void>;
  stop(): Promise<void>;
}

/** Where HAProxy is, or undefined when it is not installed. */
export function haproxyBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy']) {
    if (spawnSync(candidate, ['-v'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

async function listening(port: number, timeoutMillis: number): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`haproxy did not listen on 127.0.0.1:${port} within ${timeoutMillis} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One command on the runtime API; resolves with HAProxy's answer. */
function command(socketPath: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(answer.trim()));
    socket.once('connect', () => socket.end(`${line}\n`));
  });
}

export async function startHaproxy(servers: readonly HaproxyServer[]): Promise<Haproxy> {
  const binary = haproxyBinary();
  if (binary === undefined) throw new Error('haproxy is not installed (Debian: apt-get install haproxy)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'anchorpool-haproxy-'));
  const port = await freePort();
  const socketPath = path.join(dir, 'admin.sock');
  const config = [
    'global',
    `  stats socket ${socketPath} mode 600 level admin`,
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    // gRPC connections live long and may idle: HAProxy must not cut them.
    '  timeout client 1h',
    '  timeout server 1h',
    'frontend grpc',
    `  bind 127.0.0.1:${port}`,
    '  default_backend pods',
    'backend pods',
    '  balance roundrobin',
    ...servers.map((s) => `  server ${s.name} ${s.address}${s.disabled ? ' disabled' : ''}`),
    '',
  ].join('\n');
  const configPath = path.join(dir, 'haproxy.cfg');
  writeFileSync(configPath, config);
  // -db: stay in the foreground, so killing the child stops it.
  const child: ChildProcess = spawn(binary, ['-db', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const off = registerExitCleanup(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const stop = async (): Promise<void> => {
    off();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      listening(port, 5000),
      new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`haproxy exited (${code}) before listening: ${stderr}`)))),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  const set = async (verb: 'enable' | 'disable', server: string): Promise<void> => {
    const answer = await command(socketPath, `${verb} server pods/${server}`);
    if (answer !== '') throw new Error(`haproxy: ${verb} server pods/${server}: ${answer}`);
  };
  return {
    address: `127.0.0.1:${port}`,
    enable: (server) => set('enable', server),
    disable: (server) => set('disable', server),
    stop,
  };
}
