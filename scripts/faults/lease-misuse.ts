// Fault 7: lease misuse. Every wrong use of the lease API gets its typed error and leaves
// the pool's accounting as it was; leaked leases are reported with their acquire stack;
// aborted waiters leave nothing behind (no queue entry, no abort listener, no timer).
import { getEventListeners } from 'node:events';
import { type AnchorPool, createPool, isAnchorPoolError, type LeaseLeakEvent } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { check, sleep, type FaultCheck, type FaultScenario } from './fault.js';

/** The `code` of what fn throws (or rejects with), or a description of what happened instead. */
async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'no error';
  } catch (err) {
    return isAnchorPoolError(err) ? err.code : `untyped ${String(err)}`;
  }
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

export const leaseMisuseScenario: FaultScenario = {
  id: 'lease-misuse',
  title: 'double release, foreign lease, release and acquire after close, leaks, aborted waiters',
  async run(context) {
    const waiters = context.short ? 1000 : 10_000;
    const backend = new Backend({ name: 'misuse' });
    const pools: AnchorPool[] = [];
    const checks: FaultCheck[] = [];
    try {
      await backend.start();
      const newPool = (options: Partial<Parameters<typeof createPool>[0]> = {}): AnchorPool => {
        const pool = createPool({ target: `pass:///${backend.address}#2`, ...options });
        pools.push(pool);
        return pool;
      };
      const pool = newPool({ maxStreamsPerAnchor: 1, leakDetectionMillis: 200, maxWaitingClients: waiters, drainTimeoutMillis: 100 });
      const other = newPool();
      await Promise.all([pool.ready(), other.ready()]);

      // Double release and a foreign lease: refused, and the counts do not move.
      const first = await pool.acquire();
      first.release();
      const double = await codeOf(() => first.release());
      const foreign = await other.acquire();
      const foreignCode = await codeOf(() => pool.release(foreign));
      const notALease = await codeOf(() => pool.release({} as never));
      const intact = pool.stats().leased === 0 && other.stats().leased === 1;
      foreign.release();
      checks.push(check('double release → LeaseReleasedError', double === 'ANCHORPOOL_LEASE_RELEASED', double));
      checks.push(check('foreign lease → ForeignLeaseError, pools unchanged', foreignCode === 'ANCHORPOOL_FOREIGN_LEASE' && notALease === 'ANCHORPOOL_FOREIGN_LEASE' && intact, `another pool's lease: ${foreignCode}; a plain object: ${notALease}; leased counts intact: ${intact}`));

      // Leaks: the opt-in detector names the lease and the line that acquired it.
      const leaks: LeaseLeakEvent[] = [];
      pool.on('lease-leak', (event) => leaks.push(event));
      const leaked = await pool.acquire();
      await sleep(400);
      const leak = leaks[0];
      const stackNamesCaller = leak !== undefined && /lease-misuse\.[jt]s/.test(leak.stack);
      checks.push(check('leaked lease reported with its acquire stack', leaks.length === 1 && stackNamesCaller, leak === undefined ? 'no report' : `${leaks.length} report(s), held ${leak.heldMillis} ms, stack names this file: ${stackNamesCaller}`));

      // Aborted waiters: both anchors' single slots are taken, so every acquire waits.
      const blocker = await pool.acquire();
      const timersBefore = timers();
      const controllers = Array.from({ length: waiters }, () => new AbortController());
      const pending = controllers.map((c) => pool.acquire({ signal: c.signal, timeoutMillis: 60_000 }).then(() => 'granted', (err: unknown) => (isAnchorPoolError(err) ? err.code : String(err))));
      const queued = pool.stats().waiting;
      for (const c of controllers) c.abort();
      const outcomes = await Promise.all(pending);
      const aborted = outcomes.filter((o) => o === 'ANCHORPOOL_ACQUIRE_ABORTED').length;
      const listenersLeft = controllers.reduce((n, c) => n + getEventListeners(c.signal, 'abort').length, 0);
      const residue = { waiting: pool.stats().waiting, listeners: listenersLeft, timers: timers() - timersBefore };
      leaked.release();
      const next = await pool.acquire({ timeoutMillis: 1000 }); // a freed slot goes to a live caller, not to a ghost
      next.release();
      blocker.release();
      checks.push(check('aborted waiters leave no residue', queued === waiters && aborted === waiters && residue.waiting === 0 && residue.listeners === 0 && residue.timers <= 0, `${queued} queued, ${aborted} AcquireAbortedError; left: ${residue.waiting} waiting, ${residue.listeners} abort listeners, ${Math.max(0, residue.timers)} timers; next acquire served`));

      // After close: a lease held past the drain is reclaimed; releasing it and acquiring are refused.
      const held = await pool.acquire();
      await pool.close();
      const releaseAfter = await codeOf(() => held.release());
      const acquireAfter = await codeOf(() => pool.acquire());
      checks.push(check('release after close → PoolClosedError', releaseAfter === 'ANCHORPOOL_CLOSED', releaseAfter));
      checks.push(check('acquire after close → PoolClosedError', acquireAfter === 'ANCHORPOOL_CLOSED', acquireAfter));

      const failed = checks.filter((c) => !c.pass).length;
      return {
        id: 'lease-misuse',
        title: leaseMisuseScenario.title,
        figure: `${checks.length - failed} of ${checks.length} misuse cases refused with their typed error or left no trace; leak reported after ${leak?.heldMillis ?? '–'} ms with its acquire stack; ${waiters} aborted waiters left ${residue.waiting} queued, ${residue.listeners} abort listeners, ${Math.max(0, residue.timers)} timers`,
        checks,
        settings: { waiters, leakDetectionMillis: 200, anchors: 2, maxStreamsPerAnchor: 1 },
      };
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await backend.kill();
    }
  },
};
