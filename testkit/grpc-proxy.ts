// `etcd grpc-proxy start` (Debian's etcd binary has it) in front of etcd endpoints, on a
// free 127.0.0.1 port with a temporary data dir; stop() kills it and removes the dir.
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findEtcdBinaries, freePort } from '../etcd-dev/etcd-dev.mjs';

export interface GrpcProxy {
  /** `127.0.0.1:port`, to give as an etcd host. */
  readonly host: string;
  readonly pid: number;
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket.destroy() !== undefined));
    socket.on('error', () => resolve(false));
  });
}

export async function startGrpcProxy(endpoints: readonly string[], timeoutMillis = 10_000): Promise<GrpcProxy> {
  const binaries = findEtcdBinaries();
  if (binaries === null) throw new Error('etcd grpc-proxy needs the etcd binary on PATH');
  const port = await freePort();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'anchorpool-grpc-proxy-'));
  const child = spawn(binaries.etcd, ['grpc-proxy', 'start', `--endpoints=${endpoints.join(',')}`, `--listen-addr=127.0.0.1:${port}`, `--data-dir=${dir}`], { cwd: dir, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
    await fsp.rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMillis;
  while (!(await listening(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`etcd grpc-proxy did not listen on ${port} within ${timeoutMillis} ms`);
    }
    await sleep(50);
  }
  return { host: `127.0.0.1:${port}`, pid: child.pid ?? 0, stop };
}
