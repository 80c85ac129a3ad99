// Issue 7, item 5: a backend killed (SIGKILL) and restarted on the same port while 32
// loops run acquire → unary Echo on lease.channel → release against 3 real backends
// (child processes) with 2 anchors each. No etcd: a pass:/// target is enough here.
// Every call is recorded (lease time, backend, anchor, the anchor's state at the lease,
// status code), and every anchor state change with the pool's own lease counter of that
// anchor (backend-kill-watch.ts). The bars:
//   - no lease on an anchor of the killed backend from the moment grpc-js reports it down
//     (it leaves READY) until it is READY again — by the pool's counters and by the callers;
//   - failures only on the killed backend, all UNAVAILABLE, all leased before its anchor
//     was reported down; none elsewhere, and the other backends' anchors stay READY;
//   - detection (kill → every anchor of it out of READY) within DETECT_BAR_MILLIS: bounded
//     by grpc-js seeing the socket close, which on loopback is immediate;
//   - return (restart → its anchors READY and a successful call on it) within
//     RETURN_BAR_MILLIS: bounded by grpc-js's reconnect backoff (1 s, ×1.6, ±20 % jitter),
//     which keeps growing while the backend is down. Each anchor backs off on its own;
//     after a 3 s outage the next attempts fall 4.1–6.2 s after the first one, so about
//     3 s after the restart at worst. After that its share of leases is back to its
//     weight, and the server counts its 2 connections again.
import * as grpc from '@grpc/grpc-js';
import { type AnchorPool, type AnchorState, createPool, silentLogger } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { AnchorWatch, type DownWindow } from './backend-kill-watch.js';
import { check, sleep, type FaultContext, type FaultResult, type FaultScenario } from './fault.js';

const BACKENDS = 3;
const ANCHORS = 2;
const LOOPS = 32;
// A short handler keeps a few calls in flight on every connection at the kill, and keeps
// 3 servers plus the client from saturating a 2-core machine.
const SERVER_DELAY_MILLIS = 5;
const CALL_DEADLINE_MILLIS = 2000;
const DETECT_BAR_MILLIS = 1000;
const RETURN_BAR_MILLIS = 5000;
/** The killed backend's share of leases after its return may be off its weight by this much. */
const SHARE_TOLERANCE = 0.05;
/** Fewer leases than this after the return are too few to judge the share. */
const MIN_LEASES_AFTER_RETURN = 200;
// Waits that end the scenario with a miss instead of hanging when a bar is far off.
const DETECT_WAIT_MILLIS = 10_000;
const RETURN_WAIT_MILLIS = 30_000;

interface CallRecord {
  readonly leasedAt: number;
  readonly endedAt: number;
  /** '' when acquire() itself failed. */
  readonly address: string;
  readonly key: string;
  readonly anchor: number;
  /** The anchor's state as the pool's last event for it said, when the lease was handed out. */
  readonly stateAtLease: AnchorState | undefined;
  /** 0 for OK, the gRPC status code of a failed call, -1 for an error without one. */
  readonly code: number;
  readonly message: string;
}

const codeName = (code: number): string => (code === -1 ? 'no status' : (grpc.status[code] ?? String(code)));
const ms = (millis: number | undefined): string => (millis === undefined ? 'never' : `${Math.round(millis)} ms`);
const rate = (count: number, millis: number): number => (millis > 0 ? (count / millis) * 1000 : 0);

/** Loops of acquire → Echo → release until stop(); every call goes to `records`. */
function startLoad(pool: AnchorPool, watch: AnchorWatch, now: () => number, loops: number) {
  const records: CallRecord[] = [];
  const inFlight = new Map<string, number>();
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const askedAt = now();
      let lease;
      try {
        lease = await pool.acquire();
      } catch (err) {
        records.push({ leasedAt: askedAt, endedAt: now(), address: '', key: '', anchor: -1, stateAtLease: undefined, code: -1, message: String(err) });
        continue;
      }
      // Read before any await: the state the pool had when it granted this lease.
      const leasedAt = now();
      const stateAtLease = watch.state(lease.key, lease.anchor);
      const address = lease.address;
      inFlight.set(address, (inFlight.get(address) ?? 0) + 1);
      let code = 0;
      let message = '';
      try {
        await callEcho(lease.client(EchoClient), CALL_DEADLINE_MILLIS);
      } catch (err) {
        const status = (err as Partial<grpc.ServiceError>).code;
        code = typeof status === 'number' ? status : -1;
        message = (err as Partial<grpc.ServiceError>).details ?? String(err);
      } finally {
        inFlight.set(address, inFlight.get(address)! - 1);
        lease.release();
      }
      records.push({ leasedAt, endedAt: now(), address, key: lease.key, anchor: lease.anchor, stateAtLease, code, message });
    }
  };
  const workers = Array.from({ length: loops }, loop);
  return {
    records,
    inFlight,
    /** Ends the loops; the calls running finish (bounded by the call deadline and the acquire timeout). */
    async stop(): Promise<void> {
      running = false;
      await Promise.allSettled(workers);
    },
  };
}

async function run(context: FaultContext): Promise<FaultResult> {
  // The warm-up (JIT, first calls on every connection) is load too, but not in the "before" rate.
  const warmupMillis = context.short ? 500 : 1000;
  const beforeMillis = context.short ? 1000 : 2000;
  const downMillis = context.short ? 1500 : 3000;
  const afterMillis = context.short ? 1500 : 3000;
  const started = performance.now();
  const now = (): number => performance.now() - started;

  const backends = Array.from({ length: BACKENDS }, (_, i) => new Backend({ name: `b${i + 1}`, delayMillis: SERVER_DELAY_MILLIS }));
  const victim = backends[1]!;
  let pool: AnchorPool | undefined;
  let watch: AnchorWatch | undefined;
  let load: ReturnType<typeof startLoad> | undefined;
  try {
    await Promise.all(backends.map((b) => b.start()));
    const nameOf = new Map(backends.map((b) => [b.address, b.name]));
    pool = createPool({
      target: `pass:///${backends.map((b) => `${b.address}#${ANCHORS}`).join(',')}`,
      logger: silentLogger,
    });
    // Attached before the static source reports its entries (deferred), so every transition is seen.
    watch = new AnchorWatch(pool, now);
    const w = watch;
    const p = pool;
    await pool.ready();
    const allReady = await w.until(() => p.stats().anchors.byState.READY === BACKENDS * ANCHORS, 10_000);
    if (!allReady) throw new Error(`not every anchor became READY: ${JSON.stringify(p.stats().anchors.byState)}`);

    context.log(`backend-kill: ${LOOPS} loops over ${BACKENDS} backends × ${ANCHORS} anchors; killing ${victim.name} (${victim.address}) after ${warmupMillis + beforeMillis} ms`);
    const loadStartedAt = now();
    load = startLoad(pool, w, now, LOOPS);
    await sleep(warmupMillis);
    const measuredFrom = now();
    await sleep(beforeMillis);

    const inFlightAtKill = load.inFlight.get(victim.address) ?? 0;
    const killedAt = now();
    await victim.kill('SIGKILL');
    const exitedAt = now();
    const detected = await w.until(() => w.statesOf(victim.address).every((s) => s !== 'READY'), DETECT_WAIT_MILLIS);
    context.log(`backend-kill: ${victim.name} killed (${inFlightAtKill} calls in flight on it); its anchors ${detected ? 'left READY' : 'still READY'} after ${ms(now() - killedAt)}`);

    await sleep(Math.max(0, killedAt + downMillis - now()));
    const restartingAt = now();
    await victim.start(); // same port
    const restartedAt = now();
    const returned = await w.until(() => w.statesOf(victim.address).every((s) => s === 'READY'), RETURN_WAIT_MILLIS);
    const returnedAt = now();
    context.log(`backend-kill: ${victim.name} listening again after ${ms(restartedAt - restartingAt)} of start-up; its anchors ${returned ? 'READY' : 'not READY'} ${ms(returnedAt - restartedAt)} later`);
    await sleep(afterMillis);
    await load.stop();
    const stoppedAt = now();
    const serverConnections = (await victim.stats()).connections.length;

    // ── the record ──────────────────────────────────────────────────────────
    const records = load.records;
    const windows = w.windows().filter((win) => win.from >= loadStartedAt);
    const victimWindows = windows.filter((win) => win.address === victim.address && win.from >= killedAt);
    const otherWindows = windows.filter((win) => win.address !== victim.address);
    const windowOf = (r: CallRecord): DownWindow | undefined => victimWindows.find((win) => win.key === r.key && win.anchor === r.anchor);
    const everyVictimAnchorDown = victimWindows.length === ANCHORS;

    // Detection: the last anchor of the killed backend to leave READY.
    const detectMillis = everyVictimAnchorDown ? Math.max(...victimWindows.map((win) => win.from)) - killedAt : undefined;
    const firstDetectMillis = victimWindows.length > 0 ? Math.min(...victimWindows.map((win) => win.from)) - killedAt : undefined;

    // Leases while down: the pool's counters over every down window, the callers' view of
    // the anchor state at each lease, and on the address between "all down" and "first back".
    const poolLeasesWhileDown = windows.reduce((sum, win) => sum + win.leases, 0);
    const callerLeasesWhileDown = records.filter((r) => r.address !== '' && r.stateAtLease !== 'READY').length;
    const allDownAt = detectMillis === undefined ? undefined : killedAt + detectMillis;
    const firstBackAt = victimWindows.length > 0 ? Math.min(...victimWindows.map((win) => win.to ?? stoppedAt)) : undefined;
    const addressLeasesWhileDown =
      allDownAt === undefined || firstBackAt === undefined
        ? 0
        : records.filter((r) => r.address === victim.address && r.leasedAt >= allDownAt && r.leasedAt < firstBackAt).length;
    const leasesWhileDown = poolLeasesWhileDown + callerLeasesWhileDown + addressLeasesWhileDown;

    // Failures: where, with which status, and whether each was leased before its anchor was reported down.
    const failed = records.filter((r) => r.code !== 0);
    const acceptable = (r: CallRecord): boolean => {
      if (r.address !== victim.address || r.code !== grpc.status.UNAVAILABLE) return false;
      const win = windowOf(r);
      return win !== undefined && r.leasedAt <= win.from && r.endedAt >= killedAt;
    };
    const unexpected = failed.filter((r) => !acceptable(r));
    const failureKinds = new Map<string, number>();
    for (const r of failed) {
      const kind = `${r.address === '' ? 'acquire' : (nameOf.get(r.address) ?? r.address)} ${codeName(r.code)}`;
      failureKinds.set(kind, (failureKinds.get(kind) ?? 0) + 1);
    }
    const failedVictim = failed.filter((r) => r.address === victim.address);
    const failedLeasedBeforeKill = failedVictim.filter((r) => r.leasedAt < killedAt).length;
    const failureSummary = [...failureKinds].map(([kind, n]) => `${n} ${kind}`).join(', ') || 'none';
    const messages = [...new Set(failed.map((r) => r.message))].slice(0, 3).join(' | ');

    // Return: restart (the server listening) → its anchors READY, first lease, first successful call.
    const victimWindowEnds = victimWindows.map((win) => win.to);
    const allBackMillis = everyVictimAnchorDown && victimWindowEnds.every((to) => to !== undefined) ? Math.max(...(victimWindowEnds as number[])) - restartedAt : undefined;
    const afterRestart = records.filter((r) => r.address === victim.address && r.leasedAt >= restartedAt);
    const firstLeaseMillis = afterRestart.length > 0 ? Math.min(...afterRestart.map((r) => r.leasedAt)) - restartedAt : undefined;
    const okAfterRestart = afterRestart.filter((r) => r.code === 0);
    const firstOkMillis = okAfterRestart.length > 0 ? Math.min(...okAfterRestart.map((r) => r.endedAt)) - restartedAt : undefined;

    // Share once every anchor is READY again: round robin gives it ANCHORS of BACKENDS × ANCHORS.
    const weight = 1 / BACKENDS;
    const leasedAfter = records.filter((r) => r.address !== '' && r.leasedAt >= returnedAt);
    const victimAfter = leasedAfter.filter((r) => r.address === victim.address).length;
    const share = leasedAfter.length > 0 ? victimAfter / leasedAfter.length : 0;
    const okShareAfter = leasedAfter.filter((r) => r.code === 0 && r.address === victim.address).length / Math.max(1, leasedAfter.filter((r) => r.code === 0).length);

    // Rates by when calls ended (any outcome).
    const endedIn = (from: number, to: number): number => records.filter((r) => r.endedAt >= from && r.endedAt < to).length;
    const rateBefore = rate(endedIn(measuredFrom, killedAt), killedAt - measuredFrom);
    const rateDuring = rate(endedIn(killedAt, returnedAt), returnedAt - killedAt);
    const rateAfter = rate(endedIn(returnedAt, stoppedAt + 1), stoppedAt - returnedAt);
    const fmtRate = (r: number): string => r.toFixed(0);

    const figure =
      `detect ${ms(detectMillis)}, return ${ms(firstOkMillis)}, ${failed.length} calls failed ` +
      (unexpected.length === 0 ? '(all UNAVAILABLE on the killed backend)' : `(${unexpected.length} elsewhere, with another status or leased after detection)`) +
      `, ${leasesWhileDown} leases to it while down; ${fmtRate(rateBefore)} / ${fmtRate(rateDuring)} / ${fmtRate(rateAfter)} calls/s before / during / after`;

    const describeWindows = victimWindows
      .map((win) => `#${win.anchor} ${ms(win.from - killedAt)} after the kill via ${[...new Set(win.states)].join('→')}, READY ${win.to === undefined ? 'never' : `${ms(win.to - restartedAt)} after the restart`}`)
      .join('; ');

    return {
      id: 'backend-kill',
      title: 'Backend killed and restarted during load',
      figure,
      checks: [
        check(
          'the kill hits calls in flight (so the bars below are exercised)',
          inFlightAtKill > 0 && failed.length > 0,
          `${inFlightAtKill} calls in flight on ${victim.name} at the kill; ${failed.length} failed: ${failedLeasedBeforeKill} leased before the kill, ${failedVictim.length - failedLeasedBeforeKill} after it`,
        ),
        check(
          `grpc-js reports it down: every anchor of it out of READY ≤ ${DETECT_BAR_MILLIS} ms after the kill`,
          detected && detectMillis !== undefined && detectMillis <= DETECT_BAR_MILLIS,
          `first anchor ${ms(firstDetectMillis)}, last ${ms(detectMillis)} after SIGKILL (process exit seen after ${ms(exitedAt - killedAt)}); ${describeWindows || 'no anchor left READY'}`,
        ),
        check(
          '0 leases on an anchor that is not READY (from the moment it leaves READY until it is READY again)',
          everyVictimAnchorDown && leasesWhileDown === 0,
          `pool counters: ${poolLeasesWhileDown} over ${windows.length} down window(s); callers: ${callerLeasesWhileDown} leases on an anchor not READY; ` +
            `${victim.name} from all down (${ms(allDownAt === undefined ? undefined : allDownAt - killedAt)} after the kill) to first back: ${addressLeasesWhileDown} leases`,
        ),
        check(
          'failures only on the killed backend, all UNAVAILABLE, all leased before its anchor was reported down; the others stay READY',
          unexpected.length === 0 && otherWindows.length === 0,
          `${failed.length} failed: ${failureSummary}; ${unexpected.length} outside the bar; other backends' anchors left READY ${otherWindows.length} time(s)` +
            (messages ? `; messages: ${messages}` : ''),
        ),
        check(
          `back in rotation ≤ ${RETURN_BAR_MILLIS} ms after the restart (anchors READY and a successful call on it)`,
          returned && allBackMillis !== undefined && firstOkMillis !== undefined && allBackMillis <= RETURN_BAR_MILLIS && firstOkMillis <= RETURN_BAR_MILLIS,
          `after ${victim.name} listened again: anchors READY ${ms(allBackMillis)}, first lease ${ms(firstLeaseMillis)}, first successful call ${ms(firstOkMillis)} (down ${ms(restartingAt - killedAt)}; grpc-js reconnect backoff 1 s ×1.6 ±20 %)`,
        ),
        check(
          `then its share is back to its weight (${(weight * 100).toFixed(1)} % ± ${SHARE_TOLERANCE * 100} points) and the server holds ${ANCHORS} connections`,
          returned && leasedAfter.length >= MIN_LEASES_AFTER_RETURN && Math.abs(share - weight) <= SHARE_TOLERANCE && serverConnections === ANCHORS,
          `${victimAfter} of ${leasedAfter.length} leases (${(share * 100).toFixed(1)} %) and ${(okShareAfter * 100).toFixed(1)} % of successful calls in the ${ms(stoppedAt - returnedAt)} after its return; server counts ${serverConnections} connection(s)`,
        ),
      ],
      settings: {
        backends: BACKENDS,
        anchorsPerBackend: ANCHORS,
        loops: LOOPS,
        serverDelayMillis: SERVER_DELAY_MILLIS,
        callDeadlineMillis: CALL_DEADLINE_MILLIS,
        warmupMillis,
        loadBeforeKillMillis: beforeMillis,
        killToRestartMillis: downMillis,
        loadAfterReturnMillis: afterMillis,
        signal: 'SIGKILL',
        calls: records.length,
        target: 'pass:/// (static source, no etcd)',
      },
    };
  } finally {
    // Whatever happened: loops ended, pool closed, every backend process gone.
    await load?.stop();
    watch?.stop();
    await pool?.close();
    await Promise.all(backends.map((b) => b.kill()));
  }
}

export const backendKillScenario: FaultScenario = {
  id: 'backend-kill',
  title: 'Backend killed and restarted during load',
  run,
};
