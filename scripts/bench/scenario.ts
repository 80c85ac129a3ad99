// The shape every benchmark scenario shares, and the helpers to fill it: contenders run
// interleaved (A B C, A B C, …) for a number of repetitions, and each metric is reported
// as the median with its spread (min–max). Ratios are always against a peer measured in
// the same run: this machine is shared and noisy, absolute figures move by ±30%.

export interface BenchContext {
  /** --quick: shorter runs and fewer trials, so the whole suite stays under 2 minutes. */
  readonly quick: boolean;
  /** --tiny (implies quick): the smoke test's settings — every code path, small sizes, figures meaningless. */
  readonly tiny?: boolean;
  /** Progress lines (stderr); results go in the returned ScenarioResult. */
  log(line: string): void;
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly samples: readonly number[];
}

export interface MetricSpec {
  readonly name: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

export interface ScenarioRow {
  readonly contender: string;
  readonly values: Readonly<Record<string, Summary>>;
}

export interface Bar {
  /** The target as the issue states it, e.g. "leases >= 2x generic-pool". */
  readonly label: string;
  readonly pass: boolean;
  /** The measured figure behind the verdict. */
  readonly detail: string;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  /** Every setting that shapes the numbers (counts, durations, caps, concurrency…). */
  readonly settings: Readonly<Record<string, string | number>>;
  readonly metrics: readonly MetricSpec[];
  /** The metric charted and used for ratios. */
  readonly primary: string;
  /** The contender ratios are computed against (the peer), if any. */
  readonly baseline?: string;
  /** One group of rows per sub-case (e.g. "64 in flight"); a single group is named "". */
  readonly groups: readonly { readonly name: string; readonly rows: readonly ScenarioRow[] }[];
  readonly bars: readonly Bar[];
  readonly notes?: readonly string[];
}

export interface Scenario {
  readonly id: string;
  readonly title: string;
  run(context: BenchContext): Promise<ScenarioResult>;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)] ?? NaN, min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, samples };
}

export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/**
 * Runs each contender once per repetition, in the same order every time, and collects
 * each metric a contender returns into one summary per (contender, metric).
 */
export async function interleave(
  contenders: Readonly<Record<string, () => Promise<Readonly<Record<string, number>>>>>,
  repeats: number,
): Promise<ScenarioRow[]> {
  const collected = new Map<string, Map<string, number[]>>();
  for (let r = 0; r < repeats; r++) {
    for (const [name, run] of Object.entries(contenders)) {
      const metrics = await run();
      const byMetric = collected.get(name) ?? new Map<string, number[]>();
      for (const [metric, value] of Object.entries(metrics)) byMetric.set(metric, [...(byMetric.get(metric) ?? []), value]);
      collected.set(name, byMetric);
    }
  }
  return [...collected].map(([contender, byMetric]) => ({
    contender,
    values: Object.fromEntries([...byMetric].map(([metric, samples]) => [metric, summarize(samples)])),
  }));
}

/** The median of `metric` for `contender` in `rows`. */
export function medianOf(rows: readonly ScenarioRow[], contender: string, metric: string): number {
  return rows.find((r) => r.contender === contender)?.values[metric]?.median ?? NaN;
}

/** `promise`, or a rejection naming `what` once `millis` have passed: a stuck trial fails instead of hanging. */
export async function within<T>(promise: Promise<T>, millis: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${millis} ms`)), millis);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
