/**
 * Subsetting: which of the prefix's keys one client connects to, so a backend's
 * connections grow with the subset size, not with the number of clients.
 *
 * Rendezvous (gRFC A68's random subsetting): every key is ranked by a hash of
 * (client id, key), and the client takes the keys of highest rank. Clients with different
 * ids rank differently, so over many clients each key is in about C × S / K subsets;
 * a key that comes or goes moves only the subsets it enters or leaves (highest random
 * weight hashing), nothing else.
 *
 * The subset counts keys that can serve: walking the ranking, a key that is out of rotation
 * because it failed (its anchors in TRANSIENT_FAILURE, NOT_SERVING, ejected) is kept (its
 * anchors watch for its return) but does not count, and the walk goes on until `size` keys
 * count. A key not connected yet counts (it has not failed). So the subset widens by one
 * key for each failed one and narrows back when it returns; it widens by `size` keys at
 * most (2 × size in all): when that many fail at once the fault is more likely the
 * client's own (its network, its credentials), and dialling every backend from every
 * client would bring the load subsetting exists to prevent.
 */
import { createHash } from 'node:crypto';

/** How a key stands, for the subset's count. */
export type SubsetStanding = 'serving' | 'failed' | 'unknown';

/** The rank of `key` for `clientId`: the first 48 bits of SHA-256 over both, as a number. */
export function rendezvousRank(clientId: string, key: string): number {
  const digest = createHash('sha256').update(clientId).update('\0').update(key).digest();
  return digest.readUIntBE(0, 6);
}

/** `keys` in rendezvous order for `clientId`, highest rank first (ties by key). */
export function rendezvousOrder(clientId: string, keys: Iterable<string>): string[] {
  const ranked = [...keys].map((key) => ({ key, rank: rendezvousRank(clientId, key) }));
  ranked.sort((a, b) => b.rank - a.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return ranked.map((r) => r.key);
}

/**
 * The subset: keys in `order` until `size` of them are not failed; the failed ones on the
 * way are in it too; 2 × size keys at most. All keys when there are not enough.
 */
export function chooseSubset(order: readonly string[], size: number, standing: (key: string) => SubsetStanding): string[] {
  const chosen: string[] = [];
  let counted = 0;
  for (const key of order) {
    if (counted >= size || chosen.length >= 2 * size) break;
    chosen.push(key);
    if (standing(key) !== 'failed') counted += 1;
  }
  return chosen;
}

/**
 * Make before break: keys of the subset now applied (`current`) that the new choice drops
 * stay while they serve and the choice has fewer than `size` keys serving (its new keys are
 * still connecting), in rendezvous order; they go once their replacements serve.
 */
export function keepLeaving(chosen: readonly string[], current: ReadonlySet<string>, order: readonly string[], size: number, standing: (key: string) => SubsetStanding): string[] {
  const inChoice = new Set(chosen);
  let serving = chosen.filter((key) => standing(key) === 'serving').length;
  const kept = [...chosen];
  for (const key of order) {
    if (serving >= size) break;
    if (inChoice.has(key) || !current.has(key) || standing(key) !== 'serving') continue;
    kept.push(key);
    serving += 1;
  }
  return kept;
}
