/**
 * One key for equal options, so that things made from them can be shared: object keys
 * are sorted and Buffers compared by content; the key is a hash, so no credential stays
 * readable where it is stored. Objects that JSON cannot show (a logger) are told apart by
 * identity: the same object gives the same key, another object another key.
 */
import { createHash } from 'node:crypto';

const identities = new WeakMap<object, number>();
let nextIdentity = 0;

function identityOf(value: object): string {
  let id = identities.get(value);
  if (id === undefined) {
    nextIdentity += 1;
    id = nextIdentity;
    identities.set(value, id);
  }
  return `#object${id}`;
}

export function optionsKey(options: unknown): string {
  const canonical = JSON.stringify(options, (_key, value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) return value;
    if ((value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) return value;
    // A plain object is compared by content; anything else, or with methods (a logger), by identity.
    const prototype: unknown = Object.getPrototypeOf(value);
    const plain = prototype === Object.prototype || prototype === null;
    if (!plain || Object.values(value).some((field) => typeof field === 'function')) return identityOf(value);
    return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
  return createHash('sha256').update(canonical ?? 'undefined').digest('hex');
}
