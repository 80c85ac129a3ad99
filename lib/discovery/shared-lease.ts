/**
 * SharedLease: one etcd lease per process for the coordinated clients that register on
 * the same etcd connection with the same TTL. Their keys all sit on it; one keepalive a
 * third of a TTL keeps them all, on whichever client the process shares at the time.
 *
 *   grant ──► keepalive every TTL/3 (current shared client) ──► etcd says it ended ──► lost:
 *     ▲                                                                  every user claims again
 *     └──────────────────────── next id() ◄──────────────────────────────┘
 *
 * Why not etcd3's Lease per client: its lease lives on one etcd3 client, so every time the
 * shared client was renewed (a busy process's calls timed out) every client granted a lease
 * of its own and claimed its key again, which made the process busier: 1,000 clients in 4
 * processes granted 15,595 leases before they settled. Here a renewal changes nothing (the
 * next keepalive goes on the new client), an outage shorter than the TTL changes nothing,
 * and the lease counts as lost only when etcd answers that it ended: then one grant, and
 * each user's claim moves its key onto it.
 */
import type { Etcd3 } from 'etcd3';
import { acquireEtcdClient, type SharedEtcdClient } from '../etcd/etcd-client-share.js';
import type { EtcdConnection } from '../etcd/etcd-client.js';
import { EtcdUnavailableError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { optionsKey } from '../core/options-key.js';
import { OwnedListeners } from '../core/owned-listeners.js';

export interface SharedLease {
  readonly ttlSeconds: number;
  /** The lease to put keys on (decimal id), granted first when there is none; rejects when etcd does not grant it by `deadline`. */
  id(deadline: number): Promise<string>;
  /** `listener` hears of each lease etcd ended (its id): the keys on it are gone. Returns the unsubscribe. */
  onLost(listener: (id: string, error: Error) => void): () => void;
  /** This user is done (its keys deleted); the last one revokes the lease. */
  release(): void;
}

interface Entry {
  readonly key: string;
  readonly ttlSeconds: number;
  readonly etcd: SharedEtcdClient;
  readonly dialTimeoutMillis: number;
  readonly logger: Logger;
  refs: number;
  leaseId: string | undefined;
  granting: Promise<string> | undefined;
  keeping: boolean;
  timer: NodeJS.Timeout | undefined;
  readonly listeners: Set<(id: string, error: Error) => void>;
}

const entries = new Map<string, Entry>();

/** The lease of every coordinated client on this etcd connection with this TTL. */
export function acquireSharedLease(etcd: EtcdConnection, ttlSeconds: number, logger: Logger): SharedLease {
  const { watchdogMillis: _watchdog, ...connection } = etcd;
  const key = optionsKey({ ttlSeconds, connection });
  let entry = entries.get(key);
  if (entry === undefined) {
    entry = { key, ttlSeconds, etcd: acquireEtcdClient(etcd, logger), dialTimeoutMillis: etcd.dialTimeoutMillis, logger, refs: 0, leaseId: undefined, granting: undefined, keeping: false, timer: undefined, listeners: new Set() };
    entries.set(key, entry);
  }
  const shared = entry;
  shared.refs += 1;
  let released = false;
  const listeners = new OwnedListeners(shared.listeners);
  return {
    ttlSeconds,
    id: (deadline) => leaseOf(shared, deadline),
    onLost: (listener) => listeners.add(listener),
    release: () => {
      if (released) return;
      released = true;
      listeners.clear();
      shared.refs -= 1;
      if (shared.refs === 0) close(shared);
    },
  };
}

function leaseOf(entry: Entry, deadline: number): Promise<string> {
  if (entry.leaseId !== undefined) return Promise.resolve(entry.leaseId);
  entry.granting ??= grant(entry, deadline).finally(() => {
    entry.granting = undefined;
  });
  return entry.granting;
}

async function grant(entry: Entry, deadline: number): Promise<string> {
  let id: string;
  try {
    id = String((await entry.etcd.current().leaseClient.leaseGrant({ TTL: entry.ttlSeconds }, { deadline })).ID);
  } catch (err) {
    if (entry.refs === 0) entry.etcd.release();
    throw err;
  }
  if (entry.refs === 0) {
    // Everyone left while it was being granted: give it back.
    revoke(entry, id);
    throw new EtcdUnavailableError('the shared lease was released while it was being granted');
  }
  entry.leaseId = id;
  entry.timer ??= setInterval(() => void keep(entry), (entry.ttlSeconds * 1000) / 3).unref();
  return id;
}

/** One keepalive on the current client; the lease is lost only when etcd says it ended. */
async function keep(entry: Entry): Promise<void> {
  const id = entry.leaseId;
  if (id === undefined || entry.keeping) return;
  entry.keeping = true;
  try {
    const client = entry.etcd.current();
    const ttl = await keepaliveOnce(client, id, Date.now() + Math.min(entry.dialTimeoutMillis, (entry.ttlSeconds * 1000) / 3));
    entry.etcd.heard(client);
    if (ttl > 0 || entry.leaseId !== id) return;
    entry.leaseId = undefined;
    entry.logger.warn({ lease: BigInt(id).toString(16).padStart(16, '0') }, 'the shared registration lease ended in etcd; the clients on it register again');
    const error = new EtcdUnavailableError(`etcd ended the shared lease ${id} (not kept alive within its TTL)`);
    for (const listener of [...entry.listeners]) listener(id, error);
  } catch (err) {
    // etcd unreachable or slow: try again in a third of a TTL. Keys stay while etcd keeps the lease.
    entry.logger.debug({ error: String(err) }, 'keeping the shared registration lease alive failed; trying again');
  } finally {
    entry.keeping = false;
  }
}

/** The lease's TTL left after one keepalive (0 or less: etcd ended it). */
async function keepaliveOnce(client: Etcd3, id: string, deadline: number): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive({ deadline });
  try {
    return await new Promise<number>((resolve, reject) => {
      stream.on('data', (response: { TTL: string }) => resolve(Number(response.TTL)));
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('the keepalive stream ended without an answer')));
      stream.write({ ID: id });
    });
  } finally {
    stream.on('error', () => undefined);
    stream.end();
  }
}

function revoke(entry: Entry, id: string): void {
  entry.etcd
    .current()
    .leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + entry.dialTimeoutMillis })
    .catch((err: unknown) => entry.logger.debug({ error: String(err) }, `could not revoke the shared lease; it expires within ${entry.ttlSeconds} s`))
    .finally(() => entry.etcd.release());
}

function close(entry: Entry): void {
  entries.delete(entry.key);
  clearInterval(entry.timer);
  entry.timer = undefined;
  const id = entry.leaseId;
  entry.leaseId = undefined;
  if (id !== undefined) revoke(entry, id);
  else if (entry.granting === undefined) entry.etcd.release();
  // A grant in flight revokes its lease and releases the client when it ends (see grant).
}
