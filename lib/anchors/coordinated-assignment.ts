/**
 * The coordinated assignment: every client's subset, computed alike by every client from
 * the same two lists, the ids registered under the clients prefix and the backends' keys.
 *
 * Rendezvous with room (bounded-load rendezvous hashing): each (client, key) pair has a
 * score, a hash of both. Pairs are taken best score first while the client has fewer than
 * `size` keys and the key has room. Every key has room for ⌊C·S/K⌋ clients, and C·S mod K
 * keys (the first to fill up) for one more, so every key ends in ⌊C·S/K⌋ or ⌈C·S/K⌉
 * subsets. Without the room this would be plain rendezvous, each client's best `size`
 * keys; with it, a client whose best keys filled up first takes its next best.
 *
 * Why this and not windows on a ring (as deterministic aperture or gRFC A66): a window's
 * start is a position among the keys, and every key that comes or goes shifts the
 * positions of the keys after it, so windows slide across keys that did not change (the
 * bench measured 23.7% of connections closed or opened for 10% more keys, rendezvous
 * 18.2%). Here a new key takes the pairs where it scores best, and the room it takes from
 * the others frees their worst pairs: the moves stay near rendezvous's
 * (spec/coordinated-assignment.spec.ts, docs/fleets.md).
 *
 * Rarely, the last clients to fill find room only on keys they hold already; each then
 * takes a key from a client that lacks one of those keys, which moves there (the rooms are
 * unchanged). The scores are part of the protocol: clients that compute them differently
 * (another version of this file) disagree, and the balance suffers, not the calls.
 */
import { createHash } from 'node:crypto';
import { MinHeap } from '../core/min-heap.js';

/** Each client id to its subset, best score first; the same on every client for the same lists. */
export type Assignment = ReadonlyMap<string, readonly string[]>;

/** Candidates taken per client before its full order is needed (most clients never need it). */
const CANDIDATES_PER_SIZE = 2;
const CANDIDATES_EXTRA = 8;
/** Assignments remembered: the pools of one process see the same lists, and compute them once. */
const REMEMBERED = 4;

const remembered = new Map<string, Assignment>();

/**
 * Every client's subset of `size` keys (all keys when there are no more than `size`).
 * Ids and keys are taken as sets: their order does not matter.
 */
export function assignSubsets(ids: Iterable<string>, keys: Iterable<string>, size: number): Assignment {
  const clients = [...new Set(ids)].sort();
  const ring = [...new Set(keys)].sort();
  // JSON, not a join: ids and keys may contain any character.
  const fingerprint = JSON.stringify([size, clients, ring]);
  const known = remembered.get(fingerprint);
  if (known !== undefined) {
    remembered.delete(fingerprint);
    remembered.set(fingerprint, known);
    return known;
  }
  const assignment = compute(clients, ring, size);
  remembered.set(fingerprint, assignment);
  if (remembered.size > REMEMBERED) remembered.delete(remembered.keys().next().value!);
  return assignment;
}

/**
 * One client's order of `keys`: its assigned subset first, then the others by its score,
 * so a subset that widens past failed keys takes the client's next best.
 */
export function coordinatedOrder(clientId: string, ids: Iterable<string>, keys: Iterable<string>, size: number): string[] {
  const all = [...new Set(keys)];
  const assigned = assignSubsets(ids, all, size).get(clientId) ?? [];
  const inSubset = new Set(assigned);
  const own = clientHash(clientId);
  const rest = all
    .filter((key) => !inSubset.has(key))
    .map((key) => ({ key, score: pairScore(own, keyHash(key)) }))
    .sort((a, b) => b.score - a.score || (a.key < b.key ? -1 : 1))
    .map((r) => r.key);
  return [...assigned, ...rest];
}

/** 32 bits of SHA-256 of an id or a key, mixed once; the pairs (C × K of them) then mix these cheaply. */
function hash32(text: string, salt: number): number {
  return mix32((createHash('sha256').update(text).digest().readUInt32BE(0) ^ salt) >>> 0);
}

const clientHash = (id: string): number => hash32(id, 0);
const keyHash = (key: string): number => hash32(key, 0x9e3779b9);

/** A 32-bit avalanche (the lowbias32 constants). */
function mix32(x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A pair's score, 32 bits; ties (rare) go to the lower index, so every client breaks them alike. */
function pairScore(client: number, key: number): number {
  return mix32((client ^ key) >>> 0);
}

function compute(clients: readonly string[], keys: readonly string[], size: number): Assignment {
  const C = clients.length;
  const K = keys.length;
  const keyHashes = keys.map(keyHash);
  const clientHashes = clients.map(clientHash);
  if (K <= size) return new Map(clients.map((id, c) => [id, orderByScore(clientHashes[c]!, keyHashes).map((k) => keys[k]!)]));
  const total = C * size;
  const floor = Math.floor(total / K);
  let extra = total - floor * K;
  const count = new Int32Array(K);
  const held: number[][] = clients.map(() => []);
  const roomOn = (k: number): boolean => count[k]! < floor || (count[k] === floor && extra > 0);
  const take = (c: number, k: number): void => {
    if (count[k] === floor) extra -= 1;
    count[k] = count[k]! + 1;
    held[c]!.push(k);
  };

  // Each client's candidates, best first: its top few, then (rarely) its whole order.
  const few = Math.min(K, size * CANDIDATES_PER_SIZE + CANDIDATES_EXTRA);
  const candidates: number[][] = clientHashes.map((h) => topByScore(h, keyHashes, few));
  const next = new Int32Array(C);
  // Clients by the score of their next candidate, best first (ties: lower index first).
  const heads = new Float64Array(C);
  const heap = new MinHeap<number>((a, b) => heads[b]! - heads[a]! || a - b);
  const push = (c: number): void => {
    heads[c] = pairScore(clientHashes[c]!, keyHashes[candidates[c]![next[c]!]!]!);
    heap.push(c);
  };
  for (let c = 0; c < C; c++) push(c);

  const stuck: number[] = [];
  for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
    const k = candidates[c]![next[c]!]!;
    if (roomOn(k)) take(c, k);
    next[c] = next[c]! + 1;
    if (held[c]!.length >= size) continue;
    if (next[c]! >= candidates[c]!.length) {
      if (candidates[c]!.length === K) {
        stuck.push(c);
        continue;
      }
      candidates[c] = orderByScore(clientHashes[c]!, keyHashes);
    }
    push(c);
  }
  for (const c of stuck) complete(c, held, size, roomOn, take);
  return new Map(clients.map((id, c) => [id, sortedByScore(clientHashes[c]!, held[c]!, keyHashes).map((k) => keys[k]!)]));
}

/**
 * A client short of keys while every key with room is one it holds: a client that holds a
 * key it lacks, and lacks one with room, hands the first over and takes the second.
 */
function complete(c: number, held: number[][], size: number, roomOn: (k: number) => boolean, take: (c: number, k: number) => void): void {
  const mine = held[c]!;
  while (mine.length < size) {
    const own = new Set(mine);
    const room = [...own].filter(roomOn);
    let swapped = false;
    for (let d = 0; d < held.length && !swapped; d++) {
      if (d === c) continue;
      const theirs = held[d]!;
      const into = room.find((k) => !theirs.includes(k));
      const given = theirs.find((k) => !own.has(k));
      if (into === undefined || given === undefined) continue;
      theirs.splice(theirs.indexOf(given), 1);
      take(d, into);
      mine.push(given);
      swapped = true;
    }
    // No swap exists only when every other client holds every key with room: leave it short.
    if (!swapped) return;
  }
}

/** The `n` keys of best score for a client, best first (ties: lower index first). */
function topByScore(client: number, keys: readonly number[], n: number): number[] {
  const scores = new Float64Array(n);
  const indexes = new Int32Array(n);
  let filled = 0;
  for (let k = 0; k < keys.length; k++) {
    const score = pairScore(client, keys[k]!);
    if (filled === n && score <= scores[n - 1]!) continue;
    let at = filled < n ? filled++ : n - 1;
    for (; at > 0 && scores[at - 1]! < score; at--) {
      scores[at] = scores[at - 1]!;
      indexes[at] = indexes[at - 1]!;
    }
    scores[at] = score;
    indexes[at] = k;
  }
  return Array.from(indexes.subarray(0, filled));
}

function orderByScore(client: number, keys: readonly number[]): number[] {
  return sortedByScore(client, keys.map((_, k) => k), keys);
}

function sortedByScore(client: number, indexes: readonly number[], keys: readonly number[]): number[] {
  return indexes
    .map((k) => ({ k, score: pairScore(client, keys[k]!) }))
    .sort((a, b) => b.score - a.score || a.k - b.k)
    .map((t) => t.k);
}
