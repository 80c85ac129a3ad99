// Runs one fault scenario in a process of its own (`index.js --child`), so one scenario's
// heap, sockets, timers or crash cannot colour another's figures: the soak's heap samples
// start from a clean process, and a scenario that takes its process down is a miss with a
// reason, not the end of the suite.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FaultResult } from './fault.js';

const ENTRY = fileURLToPath(new URL('./index.js', import.meta.url));
export const RESULT_MARK = 'FAULT-RESULT ';

export interface IsolatedOptions {
  readonly short: boolean;
  readonly minutes?: number;
  /** Each line the child logs (stderr). */
  readonly log: (line: string) => void;
}

export function runIsolated(id: string, title: string, options: IsolatedOptions): Promise<FaultResult> {
  const args = [ENTRY, '--child', '--only', id];
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
