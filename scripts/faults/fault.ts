// The shape every fault scenario shares. A scenario sets up real etcd members and real
// backends, breaks something, and returns its headline figure plus one check per bar of
// the issue. The runner (index.ts) prints them and fails on a miss; spec/faults.spec.ts
// runs the short profile of the same code inside `npm test`.

export interface FaultContext {
  /** The shortened profile `npm test` runs (same checks, smaller sizes and durations). */
  readonly short: boolean;
  /** Soak length in minutes (`--minutes`); the soak scenario's default otherwise. */
  readonly minutes?: number;
  /** Progress lines (stderr); figures go in the returned result. */
  log(line: string): void;
}

export interface FaultCheck {
  /** The bar as the issue states it, e.g. "0 lost, 0 phantom". */
  readonly label: string;
  readonly pass: boolean;
  /** The measured figure behind the verdict. */
  readonly detail: string;
}

export interface FaultResult {
  readonly id: string;
  readonly title: string;
  /** One line: the scenario's measured figure(s). */
  readonly figure: string;
  readonly checks: readonly FaultCheck[];
  /** Settings that shape the figure (durations, counts, periods). */
  readonly settings: Readonly<Record<string, string | number>>;
}

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
