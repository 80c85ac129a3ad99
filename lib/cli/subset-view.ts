/**
 * What `status --subset-size` shows of a subset without dialling: the flags checked as
 * the subset option checks them, and for --subset-mode coordinated the clients under the
 * clients prefix, listed once (read only: status registers nothing, so it moves no
 * client's subset), with each client's subset as the library computes it
 * (coordinated-assignment.ts), every key counted as not failed (nothing was dialled).
 *
 *   list clients prefix ──► sorted ids (+ the client named) ──► the fleet's assignment ──► subsets
 */
import type { IKeyValue } from 'etcd3';
import { anchorOptionsShape } from '../anchors/anchor-options.js';
import { assignSubsets } from '../anchors/coordinated-assignment.js';
import { coordinationSettings, placeAmong, type CoordinationSettings } from '../discovery/client-membership.js';
import type { ResolvedEtcdOptions } from '../discovery/source-options.js';
import { acquireEtcdClient } from '../etcd/etcd-client-share.js';
import type { Logger } from '../core/logger.js';
import { UsageError } from './usage-error.js';

export type SubsetMode = 'rendezvous' | 'coordinated';

/** The subset flags of `status`, checked. */
export interface SubsetFlags {
  readonly size: number;
  readonly mode: SubsetMode;
  readonly clientId?: string | undefined;
  /** Coordinated only; with the trailing '/' the option adds. */
  readonly clientsPrefix?: string | undefined;
}

/** One client registered under the clients prefix: its id (the key's last part) and what its value says. */
export interface RegisteredClient {
  readonly clientId: string;
  /** From the client's value ({clientId, host, pid, instance, since}); null when the value does not say. */
  readonly host: string | null;
  readonly pid: number | null;
  readonly since: string | null;
}

export function parseSubsetMode(text: string | undefined): SubsetMode {
  if (text === undefined || text === 'rendezvous' || text === 'coordinated') return text ?? 'rendezvous';
  throw new UsageError(`--subset-mode must be rendezvous or coordinated, got ${text}`);
}

const FLAG_OF_FIELD: Record<string, string> = { size: '--subset-size', mode: '--subset-mode', clientId: '--client-id', clientsPrefix: '--clients-prefix' };

/** The flags through the subset option's own schema: the same rules for the id and the prefix, errors naming the flag. */
export function checkSubsetFlags(flags: SubsetFlags): SubsetFlags {
  if (flags.clientsPrefix !== undefined && flags.mode !== 'coordinated') throw new UsageError('--clients-prefix is used only with --subset-mode coordinated');
  const parsed = anchorOptionsShape.subset.safeParse({
    size: flags.size,
    mode: flags.mode,
    ...(flags.clientId !== undefined && { clientId: flags.clientId }),
    ...(flags.clientsPrefix !== undefined && { clientsPrefix: flags.clientsPrefix }),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    const flag = FLAG_OF_FIELD[field] ?? `--${field}`;
    const given = (flags as unknown as Record<string, unknown>)[field];
    throw new UsageError(`${flag} ${issue.message}${given === undefined ? '' : `, got ${JSON.stringify(given)}`}`);
  }
  const subset = parsed.data!;
  return { size: subset.size, mode: subset.mode, clientId: subset.clientId, clientsPrefix: subset.clientsPrefix };
}

/**
 * Where the clients of the backends at `site` register (as the library derives it), or a
 * usage error naming the flag: pass:/// has no etcd, and a clients prefix must not
 * overlap the backends' prefix.
 */
export function clientsPrefixFor(site: ResolvedEtcdOptions | undefined, clientsPrefix: string | undefined): CoordinationSettings {
  if (site === undefined) throw new UsageError('--subset-mode coordinated needs an etcd target (the clients register in etcd); pass:/// has none');
  const settings = coordinationSettings(site, { clientsPrefix });
  if ('error' in settings) throw new UsageError(settings.error.replace(/^subset\.clientsPrefix:/, '--clients-prefix'));
  return settings;
}

function describe(kv: IKeyValue, clientsPrefix: string): RegisteredClient {
  const clientId = kv.key.toString('utf8').slice(clientsPrefix.length);
  let value: { host?: unknown; pid?: unknown; since?: unknown } = {};
  try {
    const parsed: unknown = JSON.parse(kv.value.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) value = parsed;
  } catch {
    // Not a client's value: the key still counts as a client, as it does for the clients themselves.
  }
  return {
    clientId,
    host: typeof value.host === 'string' ? value.host : null,
    pid: typeof value.pid === 'number' ? value.pid : null,
    since: typeof value.since === 'string' ? value.since : null,
  };
}

/** The clients registered under the clients prefix, sorted by id (their ranks); one read, nothing written. */
export async function listClients(settings: CoordinationSettings, deadline: number, logger: Logger): Promise<RegisteredClient[]> {
  // The connection the source already holds (the same etcd options): no second client.
  const shared = acquireEtcdClient(settings.etcd, logger);
  try {
    const response = await shared.current().getAll().prefix(settings.clientsPrefix).options({ deadline }).exec();
    const clients = response.kvs.map((kv) => describe(kv, settings.clientsPrefix));
    // Ranks compare ids as the clients do (`<`, UTF-16 code units): the default sort.
    return clients.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
  } finally {
    shared.release();
  }
}

/** A client's place among the registered ids, by the clients' own rule (placeAmong), whether it is one of them, and its subset over `keys` (no key failed). */
export function placeOf(clientId: string, ids: readonly string[], keys: Iterable<string>, size: number): { rank: number; clients: number; registered: boolean; subset: readonly string[] } {
  const { rank, clients, ids: fleet } = placeAmong(clientId, ids);
  return { rank, clients, registered: ids.includes(clientId), subset: assignSubsets(fleet, keys, size).get(clientId)! };
}

/** Each registered client's subset, and per key how many of them keep it. */
export function fleetSubsets(ids: readonly string[], keys: Iterable<string>, size: number): { subsets: (readonly string[])[]; counts: Map<string, number> } {
  const all = [...keys];
  const assignment = assignSubsets(ids, all, size);
  const counts = new Map(all.map((key) => [key, 0]));
  const subsets = ids.map((id) => assignment.get(id)!);
  for (const subset of subsets) for (const key of subset) counts.set(key, counts.get(key)! + 1);
  return { subsets, counts };
}
