// Writes many keys to etcd with a fixed number of puts in flight, as a registration
// burst from many backends would arrive, and says when the first put was sent and the
// last one acknowledged — so a reader's lag can be measured against the writes.
import type { Etcd3 } from 'etcd3';

export interface WriteTimes {
  /** performance.now() just before the first put was sent. */
  readonly startedAt: number;
  /** performance.now() when the last put was acknowledged. */
  readonly doneAt: number;
}

export async function putAll(client: Etcd3, entries: readonly (readonly [key: string, value: string])[], inFlight: number): Promise<WriteTimes> {
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, entries.length) }, async () => {
      // Each loop takes the next entry when its previous put is acknowledged.
      for (let i = next++; i < entries.length; i = next++) {
        const [key, value] = entries[i]!;
        await client.put(key).value(value).exec();
      }
    }),
  );
  return { startedAt, doneAt: performance.now() };
}
