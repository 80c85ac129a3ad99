/**
 * `anchorpool watch`: the `status --connect` view, kept live. The table is redrawn as
 * etcd changes and anchors change state (at most 4 times a second); on a terminal it is
 * redrawn in place, otherwise each changed view is printed once. Runs until Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { isAnchorPoolError } from '../core/errors.js';
import { consoleLogger } from '../core/logger.js';
import { createPool } from '../pool/pool.js';
import type { CommandIo } from './command-io.js';
import { ETCD_FLAGS_HELP, sourceOptionsFromFlags } from './etcd-flags.js';
import { renderReport, reportFromSnapshot, withAnchorStates } from './report.js';
import { asUsage, parseTimeout, statusFlags } from './status-command.js';

export const WATCH_HELP = `usage: anchorpool watch --prefix P [--etcd HOSTS] [--json] [--timeout MS]

Keep a live view of the keys under an etcd prefix and the state of their anchors,
redrawn as etcd changes and anchors connect, fail or drain. Ctrl-C stops it.

  --json                 print each changed view as one JSON line instead of a table
  --timeout MS           how long to wait for etcd at start (default 5000)
  --verbose              log discovery and connection events to stderr

${ETCD_FLAGS_HELP}`;

const CLEAR = '\x1b[H\x1b[2J';

export async function watchCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: statusFlags, strict: true, allowPositionals: false });
  if (values.help) {
    io.out(WATCH_HELP);
    return 0;
  }
  const timeoutMillis = parseTimeout(values.timeout);
  const logger = consoleLogger(values.verbose ? 'info' : 'error', io.err);
  const pool = asUsage(() => createPool({ ...sourceOptionsFromFlags(values, io.env), logger, readyTimeoutMillis: timeoutMillis }));
  let last = '';
  let timer: NodeJS.Timeout | undefined;
  const draw = (): void => {
    timer = undefined;
    const report = withAnchorStates(reportFromSnapshot(pool.snapshot(), pool.stats().source), pool.anchors(), pool.stats());
    const view = values.json ? JSON.stringify(report) : renderReport(report).join('\n');
    if (view === last) return;
    last = view;
    io.out(io.isTTY && !values.json ? `${CLEAR}${view}\n\n(${new Date().toLocaleTimeString()}, Ctrl-C to stop)` : view);
  };
  const schedule = (): void => {
    timer ??= setTimeout(draw, 250);
  };
  for (const event of ['anchor-state', 'endpoint-added', 'endpoint-updated', 'endpoint-removed', 'endpoint-invalid', 'etcd-connected', 'etcd-disconnected'] as const) {
    pool.on(event, schedule);
  }
  try {
    await pool.ready({ timeoutMillis }).catch((err: unknown) => {
      if (!isAnchorPoolError(err) || err.code !== 'ANCHORPOOL_READY_TIMEOUT') throw err;
    });
    draw();
    await io.interrupted;
    return 0;
  } catch (err) {
    io.err(`anchorpool watch: ${(err as Error).message}`);
    return 1;
  } finally {
    clearTimeout(timer);
    await pool.close();
  }
}
