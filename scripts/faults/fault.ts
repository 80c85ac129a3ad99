// The shape every fault scenario shares. A scenario sets up real etcd members and real
// backends, breaks something, and returns its headline figure plus one check per bar of
// the issue. The runner (index.ts) prints them and fails on a miss; spec/e2e/faults.spec.ts
// runs the short profile of the same runner inside `npm run test:e2e`.

export interface FaultContext {
  /** The shortened profile `npm run test:e2e` runs (same checks, smaller sizes and durations). */
  readonly short: boolean;
  /** Soak length in minutes (`--minutes`); the soak scenario's default otherwise. */
  readonly minutes?: number;
  /** Progress lines (stderr); figures go in the returned result. */
  log(line: string): void;
}

import type { FaultCheck, FaultResult } from '../../testkit/fault-process.js';

// The result shape is the protocol between a scenario's process and its parent, so it
// lives in the test kit (testkit/fault-process.ts), which spec/e2e/faults.spec.ts shares.
export type { FaultCheck, FaultResult } from '../../testkit/fault-process.js';

export interface FaultScenario {
  readonly id: string;
  readonly title: string;
  run(context: FaultContext): Promise<FaultResult>;
}

/** A check with its verdict computed here, so a scenario reads as a list of bars. */
export function check(label: string, pass: boolean, detail: string): FaultCheck {
  return { label, pass, detail };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
