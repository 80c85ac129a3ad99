// Runs one fault scenario in a process of its own (the fault runner's `--child` mode), so
// one scenario's heap, sockets, timers or crash cannot colour another's figures: the soak's
// heap samples start from a clean process, and a scenario that takes its process down is a
// miss with a reason, not the end of the suite. Shared by the runner
// (scripts/faults/index.ts) and spec/e2e/faults.spec.ts, which both name the runner's built
// entry; the result shape below is the protocol between the child and its parent.
import { spawn } from 'node:child_process';

export const RESULT_MARK = 'FAULT-RESULT ';

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

export interface IsolatedOptions {
  readonly short: boolean;
  readonly minutes?: number;
  /** Each line the child logs (stderr). */
  readonly log: (line: string) => void;
}

/** Runs scenario `id` through the fault runner at `entry` (build/scripts/faults/index.js). */
export function runIsolated(entry: string, id: string, title: string, options: IsolatedOptions): Promise<FaultResult> {
  const args = [entry, '--child', '--only', id];
  if (options.short) args.push('--short');
  if (options.minutes !== undefined) args.push('--minutes', String(options.minutes));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let pendingErr = '';
  const tail: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    pendingErr += chunk;
    const lines = pendingErr.split('\n');
    pendingErr = lines.pop() ?? '';
    for (const line of lines) {
      options.log(line);
      tail.push(line);
      if (tail.length > 20) tail.shift();
    }
  });
  // The parent going away takes the scenario (and, through their own exit hooks, its etcd and backends) with it.
  const killChild = (): void => void child.kill('SIGTERM');
  process.once('exit', killChild);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      process.off('exit', killChild);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (line !== undefined) return resolve(JSON.parse(line.slice(RESULT_MARK.length)) as FaultResult);
      resolve({
        id,
        title,
        figure: 'the scenario process ended without a result',
        settings: {},
        checks: [{ label: 'scenario completes', pass: false, detail: `exit ${signal ?? code}; last output: ${[...tail, pendingErr].filter(Boolean).slice(-5).join(' | ')}` }],
      });
    });
  });
}
