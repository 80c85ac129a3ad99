// Test harness: real etcd clusters for tap tests.
//
//   const cluster = await startEtcd(t)            // 1 member, free ports, fresh temp dir
//   const cluster = await startEtcd(t, { members: 3 })
//   await etcdctl(cluster, 'put', 'k', 'v')
//
// Every cluster is stopped by t.teardown, and also (synchronously, SIGKILL + rm -rf) if the
// test process exits or is interrupted before that, so no etcd outlives a test file.

import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import {
  etcdctl as runEtcdctl,
  requireEtcdBinaries,
  startCluster,
  type EtcdCluster,
  type EtcdctlOptions,
  type EtcdctlResult,
} from '../etcd-dev/etcd-dev.mjs';
import { registerExitCleanup } from './process-cleanup.js';

export type { EtcdCluster, EtcdctlOptions, EtcdctlResult } from '../etcd-dev/etcd-dev.mjs';
export { EtcdMember, leaderOf } from '../etcd-dev/etcd-dev.mjs';

export interface StartEtcdOptions {
  /** 1 (default) or 3 members. */
  members?: 1 | 3;
  /** Appended to every member's etcd command line (last flag wins). */
  extraArgs?: string[];
}

/** Clusters started by this process and not stopped yet. */
const live = new Set<EtcdCluster>();

/**
 * Start a real etcd cluster (1 or 3 members) on free 127.0.0.1 ports in a fresh
 * `os.tmpdir()/anchorpool-test-XXXXXX` directory. It is stopped (and the directory
 * removed) by `t.teardown`, even when the test fails or throws.
 */
export async function startEtcd(t: Test, options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const { members = 1, extraArgs = [] } = options;
  requireEtcdBinaries();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'anchorpool-test-'));
  let unregister: (() => void) | undefined;
  let started: EtcdCluster | undefined;
  try {
    started = await startCluster({
      members,
      dir,
      extraArgs,
      onSpawn: (cluster) => {
        // Track the processes as soon as they exist, before the (slow) health wait.
        unregister?.();
        live.add(cluster);
        const off = registerExitCleanup(() => cluster.killSync());
        unregister = () => {
          off();
          live.delete(cluster);
        };
      },
    });
  } catch (err) {
    unregister?.();
    await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
  const cluster = started;
  const release = unregister;
  t.teardown(async () => {
    await cluster.stop();
    release?.();
  });
  return cluster;
}

/** Clusters of this process that have not been stopped yet (for diagnostics). */
export function liveClusters(): EtcdCluster[] {
  return [...live];
}

/**
 * `etcdctl --endpoints=<all cluster endpoints> ...args`; rejects (with stderr) on failure.
 * Pass an options object as the last argument to override endpoints, input, timeout or
 * allowFail.
 */
export function etcdctl(
  cluster: EtcdCluster,
  ...args: [...string[]] | [...string[], Partial<EtcdctlOptions>]
): Promise<EtcdctlResult> {
  const argv: string[] = [];
  let opts: Partial<EtcdctlOptions> = {};
  for (const a of args as (string | Partial<EtcdctlOptions>)[]) {
    if (typeof a === 'string') argv.push(a);
    else opts = a;
  }
  return runEtcdctl(argv, { ...opts, endpoints: opts.endpoints ?? cluster.endpoints });
}

export interface WaitForOptions {
  /** Give up after this long (default 10000). */
  timeoutMs?: number;
  /** Time between attempts (default 100). */
  intervalMs?: number;
  /** What we are waiting for, for the timeout message. */
  what: string;
}

/**
 * Call `fn` until it returns a value other than false/null/undefined without throwing, and
 * return that value. On timeout, throw an Error naming `what` (and the last error thrown).
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 100, what }: WaitForOptions,
): Promise<Exclude<T, false | null | undefined>> {
  const start = Date.now();
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const value = await fn();
      if (value !== false && value !== null && value !== undefined) {
        return value as Exclude<T, false | null | undefined>;
      }
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const elapsed = Date.now() - start;
    if (elapsed >= timeoutMs) {
      const detail =
        lastError === undefined
          ? ''
          : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${elapsed} ms (${attempts} attempts) waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, timeoutMs - elapsed)));
  }
}
