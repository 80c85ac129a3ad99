// Memory per idle connection, measured in a fresh child process (scale-memory-child.ts)
// run with --expose-gc, so the flag and a clean heap are guaranteed: the RSS and heap
// growth from 0 to `count` READY anchors (or plain grpc-js channels), divided by count.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MemoryKind, MemoryReading } from './scale-memory-child.js';

const CHILD = fileURLToPath(new URL('./scale-memory-child.js', import.meta.url));
const CHILD_TIMEOUT_MILLIS = 90_000;

export async function measureMemory(kind: MemoryKind, count: number, address: string): Promise<Record<string, number>> {
  const child = fork(CHILD, [kind, String(count), address], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let timer: NodeJS.Timeout | undefined;
  try {
    const reading = await new Promise<MemoryReading>((resolve, reject) => {
      child.once('message', (m) => resolve(m as MemoryReading));
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`memory child (${kind}) exited (${signal ?? code}) before reporting`)));
      timer = setTimeout(() => reject(new Error(`memory child (${kind}) did not report within ${CHILD_TIMEOUT_MILLIS} ms`)), CHILD_TIMEOUT_MILLIS);
    });
    return {
      kibPerAnchor: (reading.rssAfter - reading.rssBefore) / 1024 / count,
      heapKibPerAnchor: (reading.heapAfter - reading.heapBefore) / 1024 / count,
    };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // It closes its connections and exits by itself once it has reported.
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    }
  }
}
