/**
 * One etcd client per process for all the sources whose etcd options are equal: pools,
 * sources and etcd:/// channels on different prefixes then cost etcd one connection per
 * member and one watch stream (etcd3 multiplexes every watcher of a client over one
 * Watch stream), instead of one of each per prefix. Reference-counted: the last release
 * closes the client.
 *
 * A source that finds the connection suspect (its watchdog's probe timed out, a stream
 * stopped delivering, a call timed out) renews the client: the suspect one is closed and
 * a new one made, on a connection of its own. The other sources hear of it first and
 * resync on the new client (a fresh listing, diffed against their state), so none of
 * them loses or repeats an event; a half-open connection thus costs every prefix on it
 * one resync. Sources renew only the client they used, so several noticing the same bad
 * connection make one new client, not several. A listing that merely timed out renews
 * only when no user heard from the client while it waited: in a busy process a slow call
 * next to calls that answer is not a half-open connection, and renewing would make every
 * prefix list again at the worst moment (a process starting 50 pools next to 500 did that
 * over and over, and the new pools got no keys for 10 s). The answers are counted per
 * client, not per member: with several members, one half-open member's connection is
 * left to the watchdogs and to the breaker that skips a failing host.
 *
 * The entry also watches the member its watch stream runs on (`leaderCheckMillis`): a
 * member cut off from its peers refuses a `hasleader` call about one election timeout
 * after the cut, and the client is renewed then, so every prefix lists again on a member
 * of the majority. (etcd itself cancels such watches only after three election timeouts.)
 * And it follows the member list (`autoSyncIntervalMillis`), as etcd's Go client does.
 */
import type { Etcd3 } from 'etcd3';
import { createEtcdClient, type EtcdConnection, type ManagedEtcd3 } from './etcd-client.js';
import type { Logger } from '../core/logger.js';
import { optionsKey } from '../core/options-key.js';
import { OwnedListeners } from '../core/owned-listeners.js';

/**
 * Why a client was replaced: a user found it suspect (a probe or call timed out, a stream
 * stopped delivering), the member carrying its watch had no leader, or the member list
 * changed under it (auto-sync).
 */
export type RenewReason = 'suspect' | 'no-leader' | 'members-changed';

export type RenewListener = (old: Etcd3, reason: RenewReason) => void;

export interface SharedEtcdClient {
  /** The client to use now. */
  current(): Etcd3;
  /** The etcd hosts the next client dials: the configured ones until auto-sync follows the member list. */
  hosts(): readonly string[];
  /** `client`, the one the caller used, is suspect: if it is still current, every user moves to a new one. */
  renew(client: Etcd3): void;
  /** A call on `client` that began at `since` (performance.now()) timed out: renew it as above, unless a user heard from it after `since`. True when renewed. */
  renewUnlessHeard(client: Etcd3, since: number): boolean;
  /** A user got an answer on `client` (a listing, a watch event, a keepalive). */
  heard(client: Etcd3): void;
  /** Why `client` was replaced (its calls were cancelled for that); undefined while it is not. */
  retired(client: Etcd3): RenewReason | undefined;
  /** Called with the old client when another user renewed it, or a check of the entry's did; returns the unsubscribe. */
  onRenewed(listener: RenewListener): () => void;
  /** This user is done; the last one closes the client. */
  release(): void;
}

interface Entry {
  client: ManagedEtcd3 | undefined;
  /** The hosts the next client dials: the configured ones until an auto-sync moves them. */
  hosts: string[];
  autoSync: NodeJS.Timeout | undefined;
  refs: number;
  readonly retired: WeakMap<Etcd3, RenewReason>;
  /** When each client last answered one of its users (performance.now()). */
  readonly heard: WeakMap<Etcd3, number>;
  readonly listeners: Set<RenewListener>;
  leaderCheck: NodeJS.Timeout | undefined;
}

/** Replaces the entry's client if it is still `client`: its users hear first (all but `except`'s), then it closes. */
function renewEntry(entry: Entry, client: Etcd3, reason: RenewReason, except?: ReadonlySet<RenewListener>): void {
  if (entry.client !== client) return;
  entry.client = undefined;
  entry.retired.set(client, reason);
  for (const listener of [...entry.listeners]) if (!except?.has(listener)) listener(client, reason);
  client.close();
}

/**
 * Runs `task` on the entry's current client every `millis` (0: never), one run at a time;
 * the timer does not keep the process alive.
 */
function everyTick(entry: Entry, millis: number, task: (client: ManagedEtcd3) => Promise<unknown>): NodeJS.Timeout | undefined {
  if (millis === 0) return undefined;
  let running = false;
  const timer = setInterval(() => {
    const client = entry.client;
    if (client === undefined || running) return;
    running = true;
    void task(client).finally(() => (running = false));
  }, millis);
  timer.unref();
  return timer;
}

/** Every leaderCheckMillis: does the watch stream's member still have a leader? */
function startLeaderCheck(entry: Entry, options: EtcdConnection, logger: Logger | undefined): void {
  entry.leaderCheck ??= everyTick(entry, options.leaderCheckMillis, async (client) => {
    const answer = await client.checkWatchLeader(options.dialTimeoutMillis, options.leaderCheckMillis);
    if (answer !== 'no-leader' || entry.client !== client) return;
    logger?.warn({}, 'the etcd member carrying the watch has no leader (cut off from its cluster?): listing again on another member');
    renewEntry(entry, client, 'no-leader');
  });
}

const entries = new Map<string, Entry>();
/** Every client any entry made, process-wide: its connection arg keeps it apart from all others (and from a renewed one's, possibly half-open, connection). */
let clientGeneration = 0;

/** The same host, however written: `http://127.0.0.1:2379` and `127.0.0.1:2379` are one. */
function hostKey(host: string): string {
  return host.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/**
 * Every autoSyncIntervalMillis: the cluster's members (started, not learners) by their
 * client URLs. A changed list that shares a host with the current one replaces the hosts
 * and renews the client, so every prefix resyncs on the members that exist now.
 */
function startAutoSync(entry: Entry, options: EtcdConnection, logger: Logger | undefined): void {
  entry.autoSync ??= everyTick(entry, options.autoSyncIntervalMillis, (client) =>
    client.cluster.memberList({ linearizable: true }, { deadline: Date.now() + options.dialTimeoutMillis }).then(
      (response) => {
        const urls = response.members.filter((m) => !m.isLearner && m.name !== '').flatMap((m) => m.clientURLs);
        const current = new Set(entry.hosts.map(hostKey));
        const next = [...new Set(urls.map(hostKey))];
        const same = next.length === current.size && next.every((h) => current.has(h));
        if (urls.length === 0 || same || entry.client !== client) return;
        if (!next.some((h) => current.has(h))) return;
        logger?.info({ from: entry.hosts, to: urls }, 'etcd members changed: moving to the current member list');
        entry.hosts = urls;
        renewEntry(entry, client, 'members-changed');
      },
      // Unreachable or refused: the watch and the watchdog deal with that; try again next time.
      () => undefined,
    ),
  );
}

/**
 * No receive limit, as etcd's Go client: a listing page or a catch-up watch response
 * holds many values (each up to etcd's 1.5 MiB), and grpc-js's default 4 MiB cap would
 * fail every listing of such a prefix for good. Values over maxValueBytes are still
 * rejected one by one, by byte count.
 */
function newClient(options: EtcdConnection, hosts: string[]): ManagedEtcd3 {
  clientGeneration += 1;
  return createEtcdClient({ ...options, hosts }, { grpcOptions: { 'anchorpool.etcd_client': clientGeneration, 'grpc.max_receive_message_length': -1 } });
}

/**
 * `watchdogMillis` is each source's own: sources that differ only in it still share a
 * client. `logger` (the first user's) hears of leader checks that renew the client.
 */
export function acquireEtcdClient(etcd: EtcdConnection, logger?: Logger): SharedEtcdClient {
  const { watchdogMillis: _watchdog, ...connection } = etcd;
  const options = { ...connection, watchdogMillis: 0 };
  const key = optionsKey(options);
  let entry = entries.get(key);
  if (entry === undefined) {
    entry = { client: undefined, hosts: options.hosts, autoSync: undefined, refs: 0, retired: new WeakMap(), heard: new WeakMap(), listeners: new Set(), leaderCheck: undefined };
    entries.set(key, entry);
  }
  const shared = entry;
  shared.refs += 1;
  let released = false;
  const listeners = new OwnedListeners(shared.listeners);
  return {
    current: () => {
      if (released) throw new Error('anchorpool: the shared etcd client was released');
      if (shared.client === undefined) {
        shared.client = newClient(options, shared.hosts);
        startLeaderCheck(shared, options, logger);
        startAutoSync(shared, options, logger);
      }
      return shared.client;
    },
    hosts: () => [...shared.hosts],
    renew: (client) => {
      if (!released) renewEntry(shared, client, 'suspect', listeners.own);
    },
    renewUnlessHeard: (client, since) => {
      if (released || (shared.heard.get(client) ?? -Infinity) > since) return false;
      renewEntry(shared, client, 'suspect', listeners.own);
      return true;
    },
    heard: (client) => {
      shared.heard.set(client, performance.now());
    },
    retired: (client) => shared.retired.get(client),
    onRenewed: (listener) => listeners.add(listener),
    release: () => {
      if (released) return;
      released = true;
      listeners.clear();
      shared.refs -= 1;
      if (shared.refs > 0) return;
      entries.delete(key);
      clearInterval(shared.leaderCheck);
      clearInterval(shared.autoSync);
      shared.client?.close();
      shared.client = undefined;
    },
  };
}

/** How many distinct etcd clients are open in this process (for specs and status). */
export function sharedEtcdClients(): number {
  let open = 0;
  for (const entry of entries.values()) if (entry.client !== undefined) open += 1;
  return open;
}
