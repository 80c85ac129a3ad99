// Ctrl-C (SIGINT), SIGTERM and SIGHUP become an AbortSignal that every wait of the demo
// follows, so it stops what it started in order instead of dying half-way. A Ctrl-C in
// a terminal reaches us twice when npm runs us (from the terminal and forwarded by npm),
// so only a signal more than a second after the first counts as "stop now": it exits at
// once and leaves the cleanup to the exit fallbacks.
import { constants } from 'node:os';

const HANDLED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const REPEAT_GRACE_MILLIS = 1000;

export interface Interruptions {
  readonly signal: AbortSignal;
  /** The first signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  dispose(): void;
}

/** The conventional exit code of a process ended by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 1);
}

export function catchInterruptions(onFirst: (signal: NodeJS.Signals) => void): Interruptions {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let firstAt = 0;
  const handler = (signal: NodeJS.Signals): void => {
    if (received === undefined) {
      received = signal;
      firstAt = Date.now();
      onFirst(signal);
      controller.abort(new Error(`interrupted by ${signal}`));
    } else if (Date.now() - firstAt > REPEAT_GRACE_MILLIS) {
      process.exit(signalExitCode(received));
    }
  };
  for (const signal of HANDLED) process.on(signal, handler);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose: () => {
      for (const signal of HANDLED) process.off(signal, handler);
    },
  };
}
