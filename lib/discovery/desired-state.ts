/**
 * The desired state: which endpoint entries should exist, keyed by etcd key, plus the
 * keys whose current value is invalid. Pure logic, no I/O.
 *
 * Invalid values are fail-static: a key that had a valid value keeps it; a new key
 * with an invalid value is not added. Changes accumulate and are taken as one
 * coalesced diff, computed by comparing each touched key's value before the batch
 * with its value now, so a burst of puts and deletes yields one minimal diff.
 */
import { type EndpointEntry, type ParseLimits, parseEndpointValue, sameEndpoint } from './endpoint-entry.js';

export interface InvalidEndpoint {
  readonly key: string;
  readonly reason: string;
  readonly modRevision: number;
  /** True when an earlier valid value of this key is still being served. */
  readonly keptPrevious: boolean;
}

export interface EndpointDiff {
  readonly added: readonly EndpointEntry[];
  readonly updated: readonly { readonly before: EndpointEntry; readonly after: EndpointEntry }[];
  readonly removed: readonly EndpointEntry[];
}

export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  readonly modRevision: number;
}

export class DesiredState {
  readonly #limits: ParseLimits;
  readonly #endpoints = new Map<string, EndpointEntry>();
  readonly #invalid = new Map<string, InvalidEndpoint>();
  /** mod revision of the value last seen per key, valid or not: resyncs skip unchanged keys. */
  readonly #seenRevision = new Map<string, number>();
  /** Value of each key touched since the last takeDiff(), as it was before the batch. */
  #before = new Map<string, EndpointEntry | undefined>();

  constructor(limits: ParseLimits) {
    this.#limits = limits;
  }

  get endpoints(): ReadonlyMap<string, EndpointEntry> {
    return this.#endpoints;
  }

  get invalid(): ReadonlyMap<string, InvalidEndpoint> {
    return this.#invalid;
  }

  /** Applies a PUT. Returns the invalid record when the value was rejected. */
  put(kv: KeyValue): InvalidEndpoint | undefined {
    if (this.#seenRevision.get(kv.key) === kv.modRevision) return undefined;
    this.#seenRevision.set(kv.key, kv.modRevision);
    const parsed = parseEndpointValue(kv.key, kv.value, this.#limits);
    if (!parsed.ok) {
      const record: InvalidEndpoint = {
        key: kv.key,
        reason: parsed.reason,
        modRevision: kv.modRevision,
        keptPrevious: this.#endpoints.has(kv.key),
      };
      this.#invalid.set(kv.key, record);
      return record;
    }
    this.#invalid.delete(kv.key);
    this.set(parsed.endpoint);
    return undefined;
  }

  /** Sets an already-parsed endpoint (static targets). */
  set(endpoint: EndpointEntry): void {
    this.#touch(endpoint.key);
    this.#endpoints.set(endpoint.key, endpoint);
  }

  delete(key: string): void {
    this.#seenRevision.delete(key);
    this.#invalid.delete(key);
    if (this.#endpoints.has(key)) {
      this.#touch(key);
      this.#endpoints.delete(key);
    }
  }

  /**
   * Replaces the whole state with a fresh listing (a resync): keys missing from it are
   * deleted, the others are put. Returns the invalid records the listing produced.
   */
  replace(listing: Iterable<KeyValue>): InvalidEndpoint[] {
    const present = new Set<string>();
    const invalid: InvalidEndpoint[] = [];
    for (const kv of listing) {
      present.add(kv.key);
      const record = this.put(kv);
      if (record) invalid.push(record);
    }
    for (const key of [...this.#seenRevision.keys()]) {
      if (!present.has(key)) this.delete(key);
    }
    for (const key of [...this.#endpoints.keys()]) {
      if (!present.has(key)) this.delete(key);
    }
    return invalid;
  }

  /** The changes since the last call, coalesced per key; null when nothing changed. */
  takeDiff(): EndpointDiff | null {
    if (this.#before.size === 0) return null;
    const added: EndpointEntry[] = [];
    const updated: { before: EndpointEntry; after: EndpointEntry }[] = [];
    const removed: EndpointEntry[] = [];
    for (const [key, before] of this.#before) {
      const after = this.#endpoints.get(key);
      if (before === undefined && after !== undefined) added.push(after);
      else if (before !== undefined && after === undefined) removed.push(before);
      else if (before !== undefined && after !== undefined && !sameEndpoint(before, after)) updated.push({ before, after });
    }
    this.#before = new Map();
    if (added.length === 0 && updated.length === 0 && removed.length === 0) return null;
    return { added, updated, removed };
  }

  #touch(key: string): void {
    if (!this.#before.has(key)) this.#before.set(key, this.#endpoints.get(key));
  }
}
