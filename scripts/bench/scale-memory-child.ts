// Child process of the scale scenario's memory measurement, run with --expose-gc so the
// heap can be collected before each reading, and started fresh for every measurement so
// no earlier work is left in its heap.
//
//   node --expose-gc scale-memory-child.js <anchorpool|channels> <count> <host:port>
//
// It opens one anchor (or channel), waits for READY and closes it again — so code
// loading and JIT warm-up are not counted per anchor — then collects garbage and reads
// RSS and heapUsed, opens <count> anchors (a lease pool over pass:/// with keys of 50
// anchors each) or <count> plain grpc-js channels (each with its own subchannel pool,
// so its own connection), waits until all are READY and idle, collects again, reads
// again, and sends both readings to its parent.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger } from '../../lib/index.js';

export type MemoryKind = 'anchorpool' | 'channels';

export interface MemoryReading {
  readonly kind: MemoryKind;
  readonly count: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
}

const ANCHORS_PER_KEY = 50;
const READY_TIMEOUT_MILLIS = 60_000;

/** Several full collections with pauses between, so finalizers and freed native memory settle. */
async function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('scale-memory-child needs --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(100);
  }
}

async function openAnchors(count: number, address: string): Promise<() => Promise<void>> {
  const keys = Array.from({ length: Math.ceil(count / ANCHORS_PER_KEY) }, (_, i) => `${address}#${Math.min(ANCHORS_PER_KEY, count - i * ANCHORS_PER_KEY)}`);
  const pool = createPool({ target: `pass:///${keys.join(',')}`, logger: silentLogger, readyTimeoutMillis: READY_TIMEOUT_MILLIS });
  const deadline = Date.now() + READY_TIMEOUT_MILLIS;
  while (pool.stats().anchors.byState.READY < count) {
    if (Date.now() > deadline) throw new Error(`only ${pool.stats().anchors.byState.READY} of ${count} anchors READY`);
    await sleep(20);
  }
  return () => pool.close();
}

function whenReady(channel: grpc.Channel): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      channel.watchConnectivityState(state, Date.now() + READY_TIMEOUT_MILLIS, (err) => (err ? reject(err) : check()));
    };
    check();
  });
}

let channelCount = 0;

async function openChannels(count: number, address: string): Promise<() => Promise<void>> {
  const credentials = grpc.credentials.createInsecure();
  // A distinct arg and a local subchannel pool: one connection per channel, like an anchor.
  const channels = Array.from(
    { length: count },
    () => new grpc.Channel(address, credentials, { 'grpc.use_local_subchannel_pool': 1, 'bench.channel': channelCount++ }),
  );
  await Promise.all(channels.map(whenReady));
  return async () => channels.forEach((c) => c.close());
}

async function main(): Promise<void> {
  const [kind, countText, address] = process.argv.slice(2) as [MemoryKind, string, string];
  const count = Number(countText);
  const open = kind === 'anchorpool' ? openAnchors : openChannels;
  await (await open(1, address))();
  await collect();
  const before = process.memoryUsage();
  const close = await open(count, address);
  // Idle for a moment: HTTP/2 settings acks and the first pings are done.
  await sleep(300);
  await collect();
  const after = process.memoryUsage();
  const reading: MemoryReading = { kind, count, rssBefore: before.rss, rssAfter: after.rss, heapBefore: before.heapUsed, heapAfter: after.heapUsed };
  await new Promise<void>((resolve, reject) => process.send!(reading, (err: Error | null) => (err ? reject(err) : resolve())));
  await close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`scale-memory-child failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
