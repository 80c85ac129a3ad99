// npm run demo: anchorpool end to end on a fresh machine, in about
// thirty seconds. It starts its own etcd through etcd-dev (installing it from Debian's
// packages if needed and possible) and real grpc-js echo backends that answer the
// standard health check, registers them with the real etcdctl (printing every command),
// each in a zone (a, b or c), and runs real calls through round-robin leases, with the
// pool's health checks on and the pool in zone a (zone-aware routing), while a live chart
// shows the leases per second on every anchor, its zone and health, the connections each
// server counts, and the calls by zone. Mid-run it adds a backend, changes one's anchors and
// deletes one, so the chart follows etcd live; between those steps zone a's two backends
// report NOT_SERVING, one and then both: calls leave zone a (part of them, then all) and
// come back once both serve again. At the end
// one backend fails every call for a moment: the pool's outlier detection ejects it, then
// returns it once the (short, for the demo) ejection time is over. Last, that backend's key
// may grow (maxAnchors): a burst of slow calls fills every anchor, the pool opens extra
// anchors for the key, and drains them back once the burst is over (after a short, for the
// demo, extraAnchorIdleMillis).
// Everything it started is stopped on success, on failure and on Ctrl-C or SIGTERM.
//
// This file is the story and its order; the pieces live in scripts/demo/.
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type AnchorPool } from '../lib/index.js';
import { ensureEtcdInstalled, etcdctl, startCluster, type EtcdCluster } from '../etcd-dev/etcd-dev.mjs';
import { Backend } from '../testkit/echo/backend.js';
import { DEMO_HELP, parseDemoArgs, UsageError, type DemoOptions } from './demo/args.js';
import { colorPaint, plainPaint, visibleLength, type Paint } from './demo/ansi.js';
import { Chart, summary, zoneModeText } from './demo/chart.js';
import { checkHealth } from './demo/health.js';
import { Load } from './demo/load.js';
import { Sampler, type Frame } from './demo/sampler.js';
import { LiveScreen, PlainScreen, type Screen } from './demo/screen.js';
import { etcdctlCommandLine } from './demo/shell.js';
import { catchInterruptions, signalExitCode } from './demo/signals.js';
import { Teardown } from './demo/teardown.js';

const PREFIX = 'services/echo/';
/** The service the pool's health checks ask for (the echo backends serve it and ''). */
const HEALTH_SERVICE = 'anchorpool.test.Echo';
/** How long the pool may take to act on a health change before the demo calls it a failure (on loopback it takes milliseconds). */
const HEALTH_SEEN_TIMEOUT_MILLIS = 5000;
/**
 * Zone-aware routing: the pool's own zone, and the zone each backend registers in etcd.
 * alpha and delta (which joins mid-run) are in the pool's zone, so they take every call
 * while their anchors are in rotation; beta and gamma, in zones b and c, take calls only
 * when calls leave zone a. The pool keeps the default thresholds (zoneRouting: spill
 * below 100% of zone a's anchors in rotation, panic below 50%).
 */
const POOL_ZONE = 'a';
const ZONES = { alpha: 'a', beta: 'b', gamma: 'c', delta: 'a' } as const;
/**
 * The zone scene: how long zone a runs with one backend NOT_SERVING, then with both (each
 * longer than the chart's one-second rate window, so a frame then shows only that state),
 * and how long the chart shows the calls back in zone a before the story goes on.
 */
const ZONE_PHASE_MILLIS = 2000;
const ZONE_BACK_MILLIS = 1500;
/** The zone scene's length, its few waits for the pool included; it starts at 55% of --duration. */
const ZONE_SCENE_SECONDS = 6;
/**
 * The pool's outlier detection: an entry is ejected after this many failed calls in a row,
 * for baseEjectionTimeMillis (short for the demo; the default is 30 s), and ejections end
 * at the next interval tick after that (the default interval is 10 s).
 */
const OUTLIER_DETECTION = { consecutiveFailures: 5, baseEjectionTimeMillis: 2000, intervalMillis: 250 } as const;
/** Seconds the outlier-ejection scene adds to the --duration story. */
const EJECTION_SCENE_SECONDS = 4;
/**
 * How long the backend keeps failing once ejected (then it answers again, still ejected):
 * longer than the chart's one-second rate window, so its frame then shows 0 leases/s.
 */
const FAILING_WHILE_EJECTED_MILLIS = 1500;
/**
 * Leases one anchor carries: 16 streams, of which the health check's Watch takes one, so 15
 * (the default is 100). Small, so that a burst can fill every anchor and the pool opens
 * extra ones. The demo's one pool gets it, rather than a pool of its own for that scene:
 * the chart, the servers' connection counts and the summary all read this pool, so extra
 * anchors show up among the others, as an application would see them. The other scenes
 * keep their behaviour: the steady LOOPS hold at most 32 leases; calls stay in zone a,
 * and the fewest anchors any scene leaves them there (alpha's 3: at the start, while delta
 * is NOT_SERVING or ejected) carry 45, and zones b and c carry 90 when zone a has none in
 * rotation, so outside the burst callers never wait for a full pool (only in the first
 * milliseconds, if the load starts while some anchors still connect).
 */
const MAX_LEASES_PER_ANCHOR = 16;
/** The extra-anchor scene: the key keeps its N and may grow to this many anchors. */
const MAX_ANCHORS = 4;
/**
 * The burst: loops added to the steady ones, each call held this long by the server
 * (Echo's "sleep:"). Calls stay in zone a while all its anchors are in rotation, full or
 * not: 32 + 160 callers want more leases than its 5 anchors carry (75), and than 7 do
 * (105, with delta's 2 extra), so every anchor of zone a stays full.
 */
const BURST_LOOPS = 160;
const BURST_CALL_MILLIS = 50;
/** How long the burst goes on once the extra anchors are READY: the chart's rates take a second. */
const BURST_AFTER_EXTRAS_MILLIS = 1000;
/**
 * The pool's extraAnchorIdleMillis, short for the demo (the default is 30 s). The pool looks
 * at a key's load once a second, so the first extra anchor drains 1 to 2 s after the burst
 * and the next one a second later.
 */
const EXTRA_ANCHOR_IDLE_MILLIS = 1000;
const GROWTH_CHECK_MILLIS = 1000;
/** Seconds the extra-anchor scene adds to the --duration story (it starts when the ejection ends). */
const EXTRA_SCENE_SECONDS = 3;
const TARGET = `etcd:///${PREFIX}`;
/** Calls in flight: enough to keep every anchor busy, few enough to leave the machine usable. */
const LOOPS = 32;
const FRAME_MILLIS = 250;
/** Teardown stages: what calls something stops before it. */
const STOP = { chart: 0, load: 1, pool: 2, backend: 3, etcd: 4 } as const;
const PLAIN_FRAME_MILLIS = 2000;
/** Long enough for the watch, the reconcile and new connections; short enough to catch drained rows. */
const PLAIN_AFTER_CHANGE_MILLIS = 750;

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const percent = (fraction: number): string => `${Math.round(fraction * 100)}%`;
/** `2` or, for a key that may grow, `2-4`. */
const anchorRange = (e: { anchors: number; maxAnchors?: number }): string => (e.maxAnchors === undefined ? String(e.anchors) : `${e.anchors}-${e.maxAnchors}`);
/** `zone a`, or for a value without one `no zone` (the key counts as in every zone). */
const zoneOf = (zone: string | undefined): string => (zone === undefined ? 'no zone (in every zone)' : `zone ${zone}`);
const clock = (at = Date.now()): string => new Date(at).toTimeString().slice(0, 8) + `.${String(at % 1000).padStart(3, '0')}`;

/** Block characters draw the bars unless the locale says the terminal cannot show them. */
function terminalHasUnicode(env: NodeJS.ProcessEnv): boolean {
  const locale = env['LC_ALL'] || env['LC_CTYPE'] || env['LANG'] || '';
  return locale === '' || /utf-?8/i.test(locale);
}

/** Runs the demo; resolves with the process exit code (see DEMO_HELP). */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = process.stdout;
  const live = out.isTTY === true && process.env['TERM'] !== 'dumb';
  const paint: Paint = live && !process.env['NO_COLOR'] ? colorPaint : plainPaint;
  const unicode = live && terminalHasUnicode(process.env);
  const screen: Screen = live ? new LiveScreen(out) : new PlainScreen(out);
  const reportPids = process.env['ANCHORPOOL_DEMO_REPORT_PIDS'] === '1';
  const interactive = options.interactive;
  const teardown = new Teardown();
  const interruptions = catchInterruptions((signal) => screen.log(paint('yellow', `${signal}: stopping everything the demo started…`)));
  const abort = interruptions.signal;

  const backends: Backend[] = [];
  let chart: Chart | undefined;
  let cluster: EtcdCluster | undefined;
  let loadStartedAt: number | undefined;
  const stamp = (at = Date.now()): string => paint('dim', `${clock(at)}${loadStartedAt === undefined ? '' : ` t=${((at - loadStartedAt) / 1000).toFixed(1)}s`}`);
  const note = (text: string): void => screen.log(`${stamp()}  ${paint('bold', `-- ${text}`)}`);

  /** Runs the real etcdctl, printed first exactly as one would type it. */
  const etcdctlStep = async (args: string[]): Promise<void> => {
    const endpoints = cluster!.endpoints;
    const prefix = `${stamp()}  `;
    screen.log(`${prefix}${paint('cyan', `$ ${etcdctlCommandLine(endpoints, args)}`)}`);
    const result = await etcdctl(args, { endpoints, timeoutMs: 10_000 });
    // etcdctl's own answer ("OK", or the number of keys deleted), under the command as in a terminal.
    for (const line of result.stdout.trim().split('\n')) if (line) screen.log(`${' '.repeat(visibleLength(prefix))}${paint('dim', line)}`);
  };

  const startBackend = async (name: string): Promise<Backend> => {
    const backend = new Backend({ name });
    backends.push(backend);
    teardown.add(`backend ${name}`, STOP.backend, () => backend.kill());
    await backend.start();
    chart?.addBackend(backend.address);
    const status = await checkHealth(backend.address);
    screen.log(`backend ${paint('bold', name)} on ${backend.address} (pid ${backend.pid}): grpc.health.v1.Health/Check → ${paint(status === 'SERVING' ? 'green' : 'red', status)}`);
    if (reportPids) screen.log(`pids: ${name}=${backend.pid}`);
    if (status !== 'SERVING') throw new Error(`backend ${name} reports ${status}, not SERVING`);
    return backend;
  };

  /** Ctrl-C is how --interactive ends (0); otherwise a signal gives 128 + its number. */
  const interruptedCode = (): number | undefined => {
    const received = interruptions.received;
    if (received === undefined) return undefined;
    return interactive && received === 'SIGINT' ? 0 : signalExitCode(received);
  };

  let code = 0;
  try {
    // The zone scene starts at 55% of --duration; what comes after it waits for its end (whole seconds, for the chart's clock).
    const d = options.durationSeconds;
    const zoneSceneShift = Math.max(0, Math.ceil(d * 0.55 + ZONE_SCENE_SECONDS - d * 0.75));
    const storySeconds = d + zoneSceneShift + EJECTION_SCENE_SECONDS + EXTRA_SCENE_SECONDS;
    const length = interactive ? 'until Ctrl-C' : `${storySeconds} s of load`;
    screen.log(`${paint('bold', 'anchorpool demo')}: a dev etcd, grpc-js echo backends registered with etcdctl, and a lease pool under load (${length}).`);
    await ensureEtcdInstalled({ log: (line) => screen.log(`[etcd-dev] ${line}`) });
    abort.throwIfAborted();

    // A port race retries with a new cluster; each attempt is registered for teardown as soon as it exists.
    cluster = await startCluster({ members: 1, onSpawn: (c) => teardown.add(`etcd (pid ${c.members[0]?.pid}) and its data dir ${c.dir}`, STOP.etcd, () => c.stop(), () => c.killSync()) });
    const member = cluster.members[0]!;
    screen.log(`etcd on ${member.clientUrl} (pid ${member.pid}, data dir ${cluster.dir})`);
    if (reportPids) screen.log(`pids: etcd=${member.pid}`);
    abort.throwIfAborted();

    chart = new Chart({ target: TARGET, etcdEndpoints: cluster.endpoints, loops: LOOPS, durationSeconds: interactive ? undefined : storySeconds });
    const alpha = await startBackend('alpha');
    const beta = await startBackend('beta');
    const gamma = await startBackend('gamma');
    // In --interactive a spare backend waits for the user to register it.
    const spare = interactive ? await startBackend('delta') : undefined;
    abort.throwIfAborted();

    note(`register the backends under the prefix, in the three value formats anchorpool reads, each with its zone (the pool will run in zone ${POOL_ZONE})`);
    await etcdctlStep(['put', `${PREFIX}alpha`, JSON.stringify({ addr: alpha.address, anchors: 3, zone: ZONES.alpha })]);
    await etcdctlStep(['put', `${PREFIX}beta`, JSON.stringify({ Op: 0, Addr: beta.address, Metadata: { anchors: 2, zone: ZONES.beta } })]);
    await etcdctlStep(['put', `${PREFIX}gamma`, `${gamma.address}#1@${ZONES.gamma}`]);
    abort.throwIfAborted();

    const pool: AnchorPool = createPool({
      target: TARGET,
      etcd: { hosts: cluster.hosts },
      drainTimeoutMillis: 3000,
      healthCheck: { serviceName: HEALTH_SERVICE },
      zone: POOL_ZONE,
      outlierDetection: OUTLIER_DETECTION,
      maxStreamsPerAnchor: MAX_LEASES_PER_ANCHOR,
      extraAnchorIdleMillis: EXTRA_ANCHOR_IDLE_MILLIS,
    });
    teardown.add('pool', STOP.pool, () => pool.close());
    pool.on('endpoint-added', (e) =>
      screen.log(`${stamp()}  pool: + ${e.key} → ${e.addr}, ${anchorRange(e)} anchor${e.anchors === 1 && e.maxAnchors === undefined ? '' : 's'}, ${zoneOf(e.zone)}`),
    );
    pool.on('endpoint-updated', ({ before, after }) =>
      screen.log(
        `${stamp()}  pool: ~ ${after.key} → ${after.addr}, ${anchorRange(before)} → ${anchorRange(after)} anchors${before.addr === after.addr ? '' : ` (was ${before.addr})`}` +
          `${before.zone === after.zone ? '' : `, ${zoneOf(before.zone)} → ${zoneOf(after.zone)}`}`,
      ),
    );
    pool.on('endpoint-removed', (e) => screen.log(`${stamp()}  pool: - ${e.key} (${e.addr}): its anchors drain and close`));
    pool.on('endpoint-invalid', (r) => screen.log(paint('red', `${stamp()}  pool: ! ${r.key}: ${r.reason}${r.keptPrevious ? ' (keeps its last valid value)' : ''}`)));
    pool.on('etcd-disconnected', ({ error }) => screen.log(paint('red', `${stamp()}  pool: etcd disconnected (${error.message}); serving the last known endpoints`)));
    // Every connection's first SERVING is routine; a change to or from a bad status is the story.
    const bad = (health: string): boolean => health === 'NOT_SERVING' || health === 'SERVICE_UNKNOWN';
    pool.on('anchor-health', (e) => {
      if (!bad(e.health) && !bad(e.previous)) return;
      const effect = e.health === 'SERVING' ? (e.state === 'READY' ? 'back in rotation' : `healthy, ${e.state}`) : 'out of rotation';
      screen.log(`${stamp()}  pool: ${e.key}#${e.anchor} (${e.address}) health ${e.previous} → ${e.health}: ${effect}`);
    });
    pool.on('endpoint-ejected', (e) => {
      const reason = e.reason === 'consecutive-failures' ? `${OUTLIER_DETECTION.consecutiveFailures} failed calls in a row` : 'its share of failed calls';
      const millis = e.until.getTime() - Date.now();
      screen.log(
        `${stamp()}  pool: ${e.key} (${e.address}) ejected after ${reason} (ejection ${e.times}): out of rotation until ${clock(e.until.getTime())}, ` +
          `${(millis / 1000).toFixed(1)} s (baseEjectionTimeMillis ${OUTLIER_DETECTION.baseEjectionTimeMillis} for the demo; the default is 30 s)`,
      );
    });
    pool.on('endpoint-returned', (e) => screen.log(`${stamp()}  pool: ${e.key} (${e.address}) returned after its ejection: back in rotation`));
    pool.on('anchor-extra', (e) => {
      const endpoint = pool.snapshot().endpoints.get(e.key);
      const now = pool.anchors().filter((a) => a.key === e.key && !a.draining).length;
      const tally = endpoint === undefined ? '' : `; the key now has ${now} anchors (${anchorRange(endpoint)})`;
      const line = `${stamp()}  pool: ${e.key}#${e.anchor} (${e.address}) extra anchor ${e.change}`;
      if (e.change === 'opened') screen.log(`${line}: callers wait and every anchor of the key is full${tally}`);
      else if (e.change === 'drained') {
        screen.log(
          `${line}: the key's leases stayed at or under half of what one anchor fewer carries for ${EXTRA_ANCHOR_IDLE_MILLIS / 1000} s ` +
            `(extraAnchorIdleMillis ${EXTRA_ANCHOR_IDLE_MILLIS} for the demo; the default is 30 s)${tally}`,
        );
      } else screen.log(paint('red', `${line}: it did not connect; closed, and the key backs off${tally}`));
    });
    pool.on('etcd-connected', ({ revision }) => screen.log(`${stamp()}  pool: etcd connected at revision ${revision}`));
    await pool.ready({ signal: abort });
    screen.log(`${stamp()}  pool on ${TARGET} in zone ${POOL_ZONE} ready; ${LOOPS} loops now call Echo, one lease per call`);
    screen.log(
      `${stamp()}  zone-aware routing: calls stay in zone ${POOL_ZONE} while all its anchors are in rotation; the other zones' anchors are connected and healthy, and take calls only when calls leave zone ${POOL_ZONE}`,
    );

    const startedAt = Date.now();
    loadStartedAt = startedAt;
    const load = new Load(pool, LOOPS);
    teardown.add('load', STOP.load, () => load.stop());
    const sampler = new Sampler(pool, () => backends.filter((b) => b.port !== 0), load, startedAt);
    let lastFrame: Frame | undefined;
    /** Without a live chart, a snapshot every PLAIN_FRAME_MILLIS, and one soon after each change. */
    let nextPlainAt = PLAIN_FRAME_MILLIS;
    let sampling: Promise<void> = Promise.resolve();
    let busy = false;
    const show = (frame: Frame, force: boolean): void => {
      if (screen.live) screen.frame(chart!.live(frame, screen.width, paint, unicode));
      else if (force || frame.elapsed >= nextPlainAt - FRAME_MILLIS / 2) {
        nextPlainAt = frame.elapsed + PLAIN_FRAME_MILLIS;
        screen.frame(chart!.plain(frame));
      }
    };
    const tick = (force = false): Promise<void> => {
      if (busy) return sampling; // a slow sample (a busy backend) skips a frame rather than piling up
      busy = true;
      sampling = sampler
        .sample()
        .then((frame) => {
          lastFrame = frame;
          show(frame, force);
        })
        .catch((err: unknown) => screen.log(paint('red', `chart: ${err instanceof Error ? err.message : String(err)}`)))
        .finally(() => (busy = false));
      return sampling;
    };
    const ticker = setInterval(() => void tick(), FRAME_MILLIS);
    teardown.add('chart', STOP.chart, async () => clearInterval(ticker));
    void tick();
    /** A frame now (also a plain snapshot), after the one being sampled, if any. */
    const frameNow = async (): Promise<void> => {
      await sampling;
      await tick(true);
    };

    const at = (seconds: number) => sleep(Math.max(0, startedAt + seconds * 1000 - Date.now()), undefined, { signal: abort });
    const soonAfterChange = (): void => {
      nextPlainAt = Math.min(nextPlainAt, Date.now() - startedAt + PLAIN_AFTER_CHANGE_MILLIS);
    };
    const change = async (args: string[]): Promise<void> => {
      await etcdctlStep(args);
      soonAfterChange();
    };

    /** The pool's active anchors at the backend's address. */
    const anchorsOf = (backend: Backend) => pool.anchors().filter((a) => a.address === backend.address && !a.draining);
    const leasesOn = (backend: Backend): number => anchorsOf(backend).reduce((sum, a) => sum + a.acquired, 0);
    /** Resolves once `done()` holds (polled), or fails the demo with "the pool did not `what` within `timeoutMillis` ms". */
    const poolDoes = async (done: () => boolean, what: string, timeoutMillis: number): Promise<void> => {
      const deadline = Date.now() + timeoutMillis;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`the pool did not ${what} within ${timeoutMillis} ms`);
        await sleep(10, undefined, { signal: abort });
      }
    };
    /** Resolves once every active anchor at the backend's address has `health` (polled: the events are logged above). */
    const poolSees = (backend: Backend, healthy: boolean): Promise<void> =>
      poolDoes(
        () => anchorsOf(backend).every((a) => (a.health === 'SERVING') === healthy),
        `see ${backend.name} ${healthy ? 'SERVING' : 'leave the rotation'}`,
        HEALTH_SEEN_TIMEOUT_MILLIS,
      );
    /** Sets what the backend's health service reports, printed first like an etcdctl command. */
    const setHealth = async (backend: Backend, status: 'SERVING' | 'NOT_SERVING', effect: string): Promise<void> => {
      screen.log(`${stamp()}  ${paint('cyan', `backend ${backend.name}: health → ${status}`)} (grpc.health.v1 status of "${HEALTH_SERVICE}"; ${effect})`);
      await backend.setHealth(status, HEALTH_SERVICE);
    };
    /** Leases granted so far in each zone (pool.stats().zones picks, the pool's zone first) and on some backends, read at one moment. */
    type ZoneMark = { at: number; zones: Map<string, number>; on: Map<Backend, number> };
    const zoneMark = (...on: Backend[]): ZoneMark => ({
      at: Date.now(),
      zones: new Map((pool.stats().zones?.zones ?? []).map((z) => [z.zone, z.picks])),
      on: new Map(on.map((b) => [b, leasesOn(b)])),
    });
    /** Between two marks: the leases in all, in the pool's zone, and `a 60% (1,234<localNote>), b 13% (…)` by zone. */
    const zoneLeases = (from: ZoneMark, to: ZoneMark, localNote: (n: number) => string = () => ''): { all: number; local: number; split: string } => {
      const parts = [...to.zones].map(([zone, n]) => ({ zone, n: n - (from.zones.get(zone) ?? 0) }));
      const all = parts.reduce((sum, p) => sum + p.n, 0);
      const local = parts.find((p) => p.zone === POOL_ZONE)?.n ?? 0;
      const split = parts.map((p) => `${p.zone} ${all > 0 ? percent(p.n / all) : '-'} (${count(p.n)}${p.zone === POOL_ZONE ? localNote(p.n) : ''})`).join(', ');
      return { all, local, split };
    };
    const took = (from: ZoneMark, to: ZoneMark, backend: Backend): number => (to.on.get(backend) ?? 0) - (from.on.get(backend) ?? 0);
    /** The pool's zone routing now: its mode, zone a's anchors in rotation, and the share it gives each zone. */
    const zoneRouting = (): string => {
      const zones = pool.stats().zones;
      if (zones === undefined) return 'pool.stats().zones: the pool names no zone';
      const local = zones.zones.find((z) => z.zone === zones.local);
      return (
        `pool.stats().zones: mode ${zones.mode} (${zoneModeText(zones.mode, zones.local)}); zone ${zones.local} has ${local?.healthy ?? 0} of ${local?.total ?? 0} anchors in rotation; ` +
        `shares now ${zones.zones.map((z) => `${z.zone} ${percent(z.share)}`).join(' · ')}`
      );
    };
    const secondsSince = (from: ZoneMark, to: ZoneMark): string => `${((to.at - from.at) / 1000).toFixed(1)} s`;
    /**
     * Zone a's two backends report NOT_SERVING, `first` and then `second` too, and then both
     * SERVING again. Each state lasts long enough for a frame that shows only it, and each
     * ends with the leases it saw by zone, from the pool's own counters (exact, not timed):
     * with one out, zone a keeps the other's share and the rest spills to b and c; with both
     * out, every call leaves zone a; with both back, every call stays in it again.
     */
    const zoneScene = async (first: Backend, second: Backend): Promise<void> => {
      await setHealth(first, 'NOT_SERVING', `its anchors leave the rotation: zone ${POOL_ZONE} keeps ${second.name}'s share of the calls, the rest spills to the other zones`);
      await poolSees(first, false);
      screen.log(`${stamp()}  ${zoneRouting()}`);
      soonAfterChange();
      const oneOut = zoneMark(second);
      await sleep(ZONE_PHASE_MILLIS, undefined, { signal: abort });
      // What the chart shows with one of zone a's backends out: part of the calls in b and c.
      await frameNow();
      const oneOutEnd = zoneMark(second);
      const onSecond = took(oneOut, oneOutEnd, second);
      const one = zoneLeases(oneOut, oneOutEnd, (n) => (onSecond === n ? `, all on ${second.name}` : `, ${count(onSecond)} on ${second.name}`));
      screen.log(
        `${stamp()}  ${paint('bold', `while ${first.name} was NOT_SERVING (${secondsSince(oneOut, oneOutEnd)}), zone ${POOL_ZONE} took ${one.all > 0 ? percent(one.local / one.all) : '-'} of the ${count(one.all)} leases`)}: ${one.split}`,
      );

      await setHealth(second, 'NOT_SERVING', `zone ${POOL_ZONE} has no anchor in rotation left: every call leaves it`);
      await poolSees(second, false);
      screen.log(`${stamp()}  ${zoneRouting()}`);
      soonAfterChange();
      const bothOut = zoneMark();
      await sleep(ZONE_PHASE_MILLIS, undefined, { signal: abort });
      // What the chart shows with zone a empty: its anchors NOT_SERVING, every call in b and c.
      await frameNow();
      const bothOutEnd = zoneMark();
      const both = zoneLeases(bothOut, bothOutEnd);
      screen.log(
        `${stamp()}  ${paint('bold', `while ${first.name} and ${second.name} were both NOT_SERVING (${secondsSince(bothOut, bothOutEnd)}), zone ${POOL_ZONE} took ${count(both.local)} of the ${count(both.all)} leases`)}: ${both.split}`,
      );

      await setHealth(second, 'SERVING', 'its anchors rejoin the rotation');
      await setHealth(first, 'SERVING', `its anchors rejoin the rotation: zone ${POOL_ZONE} is whole again`);
      await Promise.all([poolSees(second, true), poolSees(first, true)]);
      screen.log(`${stamp()}  ${zoneRouting()}`);
      soonAfterChange();
      const back = zoneMark();
      await sleep(ZONE_BACK_MILLIS, undefined, { signal: abort });
      await frameNow();
      const backEnd = zoneMark();
      const again = zoneLeases(back, backEnd);
      screen.log(
        `${stamp()}  ${paint('bold', `since both serve again (${secondsSince(back, backEnd)}), zone ${POOL_ZONE} took ${again.all > 0 ? percent(again.local / again.all) : '-'} of the ${count(again.all)} leases`)}: ${again.split}`,
      );
      soonAfterChange();
    };
    /** Makes the backend fail every Echo call or stop that, printed first like an etcdctl command. */
    const setFailing = async (backend: Backend, on: boolean, effect: string): Promise<void> => {
      screen.log(`${stamp()}  ${paint('cyan', `backend ${backend.name}: failing → ${on ? 'on' : 'off'}`)} (${effect})`);
      await backend.setFailing(on);
    };
    /** The anchors (key#index) opened as extra anchors, marked so in the summary. */
    const extraSlots = new Set<string>();
    pool.on('anchor-extra', (e) => {
      if (e.change === 'opened') extraSlots.add(`${e.key}#${e.anchor}`);
    });
    /** What the ejection scene measured, for the summary. */
    let ejectionScene: { backend: Backend; failed: number; leasesWhileEjected: number } | undefined;
    /**
     * The backend fails every call until the pool ejects it, and a moment longer; then it
     * answers again, and the pool returns it once the ejection time is over. Says how many
     * leases its anchors took while ejected and how many calls failed on it.
     */
    const ejection = async (backend: Backend): Promise<void> => {
      const key = `${PREFIX}${backend.name}`;
      const n = anchorsOf(backend).length;
      const failedBefore = load.errorsOn(backend.address);
      // Lease counters read in the pool's own events, as it ejects and returns the key: exact, not timed.
      type Mark = { at: number; own: number; all: number };
      const mark = (): Mark => ({ at: Date.now(), own: leasesOn(backend), all: pool.stats().acquired });
      let ejectedAt: (Mark & { until: number }) | undefined;
      let returnedAt: Mark | undefined;
      const onEjected = (e: { key: string; until: Date }): void => {
        if (e.key === key && ejectedAt === undefined) ejectedAt = { ...mark(), until: e.until.getTime() };
      };
      const onReturned = (e: { key: string }): void => {
        if (e.key === key && ejectedAt !== undefined && returnedAt === undefined) returnedAt = mark();
      };
      pool.on('endpoint-ejected', onEjected);
      pool.on('endpoint-returned', onReturned);
      try {
        await setFailing(backend, true, `every Echo call gets UNAVAILABLE, while its health check still says SERVING`);
        await poolDoes(() => ejectedAt !== undefined && anchorsOf(backend).every((a) => a.ejected), `eject ${backend.name}`, HEALTH_SEEN_TIMEOUT_MILLIS);
        const out = ejectedAt!;
        screen.log(`${stamp()}  ${zoneRouting()}`);
        soonAfterChange();
        await sleep(FAILING_WHILE_EJECTED_MILLIS, undefined, { signal: abort });
        // What the chart shows while it is ejected: its anchors marked ejected, without leases.
        await frameNow();
        await setFailing(backend, false, `it answers again; the pool keeps it ejected until ${clock(out.until)}`);
        const failed = load.errorsOn(backend.address) - failedBefore;
        // Returned at the first interval tick after its ejection time.
        const returnWithin = out.until - Date.now() + OUTLIER_DETECTION.intervalMillis + HEALTH_SEEN_TIMEOUT_MILLIS;
        await poolDoes(() => returnedAt !== undefined && anchorsOf(backend).every((a) => !a.ejected), `return ${backend.name} to the rotation`, returnWithin);
        const back = returnedAt!;
        const [own, all] = [back.own - out.own, back.all - out.all];
        ejectionScene = { backend, failed, leasesWhileEjected: own };
        screen.log(
          `${stamp()}  ${paint('bold', `while ejected (${((back.at - out.at) / 1000).toFixed(1)} s), ${backend.name}'s ${plural(n, 'anchor')} took ${count(own)} leases`)}; the others took ${count(all - own)}`,
        );
        screen.log(
          `${stamp()}  ${count(failed)} calls failed on ${backend.name} while it failed every call${own === 0 ? ', all on leases taken before the pool ejected it' : ''}`,
        );
        soonAfterChange();
        await poolDoes(() => leasesOn(backend) > back.own, `hand out a lease on ${backend.name} again`, HEALTH_SEEN_TIMEOUT_MILLIS);
      } finally {
        pool.off('endpoint-ejected', onEjected);
        pool.off('endpoint-returned', onReturned);
      }
    };
    /**
     * The backend's key may grow to MAX_ANCHORS (re-put with etcdctl, same N): a burst of slow
     * calls fills every anchor, the pool opens the extra ones, and once the burst is over it
     * drains them back, newest first. Says how many leases the extra anchors took.
     */
    const extraAnchors = async (backend: Backend): Promise<void> => {
      const key = `${PREFIX}${backend.name}`;
      const n = anchorsOf(backend).length;
      const changes: string[] = [];
      const onExtra = (e: { key: string; change: string }): void => {
        if (e.key !== key) return;
        changes.push(e.change);
        soonAfterChange();
      };
      pool.on('anchor-extra', onExtra);
      try {
        const zone = pool.snapshot().endpoints.get(key)?.zone;
        await change(['put', key, JSON.stringify({ addr: backend.address, anchors: n, maxAnchors: MAX_ANCHORS, ...(zone !== undefined && { zone }) })]);
        await poolDoes(() => pool.snapshot().endpoints.get(key)?.maxAnchors === MAX_ANCHORS, `read ${backend.name}'s maxAnchors`, HEALTH_SEEN_TIMEOUT_MILLIS);
        // Calls stay in the pool's zone while all its anchors are in rotation, even when they are full.
        const inRotation = pool.anchors().filter((a) => (a.zone ?? POOL_ZONE) === POOL_ZONE && a.state === 'READY' && a.health === 'SERVING' && !a.ejected && !a.draining).length;
        screen.log(
          `${stamp()}  ${paint('cyan', `load: a burst of ${BURST_LOOPS} more loops`)} (the server holds each of their calls ${BURST_CALL_MILLIS} ms: ` +
            `${LOOPS + BURST_LOOPS} callers for zone ${POOL_ZONE}'s ${inRotation} anchors of ${MAX_LEASES_PER_ANCHOR - 1} leases, maxStreamsPerAnchor ${MAX_LEASES_PER_ANCHOR} for the demo less the health stream; ` +
            `calls stay in zone ${POOL_ZONE} while all its anchors are in rotation, full or not)`,
        );
        const burst = load.burst(BURST_LOOPS, BURST_CALL_MILLIS);
        const extras = () => anchorsOf(backend).filter((a) => a.extra);
        let took = 0;
        try {
          await poolDoes(
            () => extras().length === MAX_ANCHORS - n && extras().every((a) => a.state === 'READY'),
            `open ${plural(MAX_ANCHORS - n, 'extra anchor')} for ${backend.name}`,
            HEALTH_SEEN_TIMEOUT_MILLIS,
          );
          await sleep(BURST_AFTER_EXTRAS_MILLIS, undefined, { signal: abort });
          // What the chart shows while the burst goes on: the key's anchors marked extra, taking leases.
          await frameNow();
          took = extras().reduce((sum, a) => sum + a.acquired, 0);
        } finally {
          screen.log(`${stamp()}  ${paint('cyan', 'load: the burst ends')} (back to ${LOOPS} loops)`);
          await burst.stop();
        }
        screen.log(`${stamp()}  ${paint('bold', `during the burst, ${backend.name}'s ${plural(MAX_ANCHORS - n, 'extra anchor')} took ${count(took)} leases`)}`);
        soonAfterChange();
        const drainWithin = EXTRA_ANCHOR_IDLE_MILLIS + (MAX_ANCHORS - n + 1) * GROWTH_CHECK_MILLIS + HEALTH_SEEN_TIMEOUT_MILLIS;
        await poolDoes(
          () => changes.filter((c) => c === 'drained').length === MAX_ANCHORS - n && !pool.anchors().some((a) => a.key === key && (a.extra || a.draining)),
          `drain ${backend.name}'s extra anchors back`,
          drainWithin,
        );
        const s = pool.stats().extraAnchors;
        screen.log(
          `${stamp()}  extra anchors (pool.stats().extraAnchors): ${s.opened} opened, ${s.drained} drained, ${s.failed} failed, ${s.open} open; ${backend.name} is back to ${plural(n, 'anchor')}`,
        );
      } finally {
        pool.off('anchor-extra', onExtra);
      }
    };
    try {
      if (interactive) {
        const suggestions: [args: string[], why: string][] = [
          [['put', `${PREFIX}delta`, JSON.stringify({ addr: spare!.address, anchors: 2, zone: ZONES.delta })], `add the spare backend delta with 2 anchors, in zone ${ZONES.delta}: it shares zone ${POOL_ZONE}'s calls with alpha`],
          [['put', `${PREFIX}gamma`, `${gamma.address}#4@${POOL_ZONE}`], `gamma: 1 → 4 anchors, and from zone ${ZONES.gamma} to zone ${POOL_ZONE}, so calls reach it`],
          [['del', `${PREFIX}beta`], `remove beta (zone ${ZONES.beta}): its anchors drain and close`],
          [['put', `${PREFIX}alpha`, JSON.stringify({ addr: alpha.address, anchors: 3, zone: 'eu west 1a' })], 'an invalid zone (no spaces): reported, alpha keeps its last valid value'],
          [['get', '--prefix', PREFIX], 'what is registered'],
        ];
        screen.log(paint('bold', 'Try these in another terminal; the chart follows (Ctrl-C here stops the demo and everything it started):'));
        for (const [args, why] of suggestions) {
          screen.log(`  ${paint('dim', `# ${why}`)}`);
          screen.log(`  ${etcdctlCommandLine(cluster.endpoints, args)}`);
        }
        screen.log(
          paint('dim', `Health checks are on ("${HEALTH_SERVICE}"); a backend's health is its own, not in etcd, so etcdctl cannot flip it: the run without --interactive shows zone ${POOL_ZONE}'s backends going NOT_SERVING and back (calls leave zone ${POOL_ZONE} and return), delta failing its calls until outlier detection ejects it, and a burst of calls that makes the pool open extra anchors for delta.`),
        );
        screen.log('');
        await new Promise<void>((resolve) => abort.addEventListener('abort', () => resolve(), { once: true }));
      } else {
        await at(d * 0.25);
        note(`a 4th backend, delta, starts and joins zone ${ZONES.delta} with 2 anchors: zone ${POOL_ZONE}'s calls now go to alpha and delta`);
        const delta = await startBackend('delta');
        await change(['put', `${PREFIX}delta`, JSON.stringify({ addr: delta.address, anchors: 2, zone: ZONES.delta })]);
        await at(d * 0.5);
        note(`gamma goes from 1 to 4 anchors: its first connection stays, 3 are added (in zone ${ZONES.gamma}, they take calls only when calls leave zone ${POOL_ZONE})`);
        await change(['put', `${PREFIX}gamma`, `${gamma.address}#4@${ZONES.gamma}`]);
        await at(d * 0.55);
        note(
          `zone ${POOL_ZONE}'s backends report NOT_SERVING, delta and then alpha too: health checks take their anchors out of rotation (their connections stay), ` +
            `and calls leave zone ${POOL_ZONE}, part of them and then all, until both serve again (zoneRouting defaults: spill below 100% in rotation, panic below 50%)`,
        );
        await zoneScene(delta, alpha);
        await at(d * 0.75 + zoneSceneShift);
        note(`beta (zone ${ZONES.beta}) is deleted: its 2 anchors drain and their connections close (the server keeps running)`);
        await change(['del', `${PREFIX}beta`]);
        await at(d * 0.8 + zoneSceneShift);
        note(
          `delta fails every call for a moment: outlier detection ejects it after ${OUTLIER_DETECTION.consecutiveFailures} failures in a row, ` +
            `for ${OUTLIER_DETECTION.baseEjectionTimeMillis / 1000} s (the demo's baseEjectionTimeMillis; the default is 30 s), then returns it`,
        );
        await ejection(delta);
        note(
          `delta may grow from 2 to ${MAX_ANCHORS} anchors (maxAnchors): a burst fills every anchor, the pool opens extra ones for delta, ` +
            `and drains them back once its load stays low for ${EXTRA_ANCHOR_IDLE_MILLIS / 1000} s (the demo's extraAnchorIdleMillis; the default is 30 s)`,
        );
        await extraAnchors(delta);
        await at(storySeconds);
      }
    } catch (err) {
      if (!abort.aborted) throw err;
    }

    // The end, however it came: the last picture (unless a Ctrl-C in the terminal already
    // took the backends down with us), then what each anchor served.
    await load.stop();
    clearInterval(ticker);
    await sampling;
    if (!abort.aborted) {
      lastFrame = await sampler.sample();
      show(lastFrame, true);
    }
    screen.close();
    const failed = {
      total: load.errors,
      byBackend: backends.map((b) => {
        const calls = load.errorsOn(b.address);
        const scene = ejectionScene?.backend === b ? ejectionScene : undefined;
        const why =
          scene !== undefined && scene.failed === calls
            ? `all while it failed every call${scene.leasesWhileEjected === 0 ? ', on leases taken before the pool ejected it' : ''}`
            : undefined;
        return { name: b.name, calls, ...(why !== undefined && { why }) };
      }),
    };
    const zoneTotals = { local: POOL_ZONE, zones: sampler.zoneTotals() };
    for (const line of summary(load.perAnchor(), lastFrame?.backends ?? [], failed, extraSlots, zoneTotals)) screen.log(line);
    if (load.calls === 0) throw new Error('no call succeeded');
    code = interruptedCode() ?? 0;
  } catch (err) {
    const interrupted = interruptedCode();
    if (interrupted !== undefined) {
      code = interrupted;
    } else {
      screen.log(paint('red', `demo failed: ${err instanceof Error ? err.message : String(err)}`));
      code = 1;
    }
  } finally {
    screen.close();
    const results = await teardown.run();
    const stopped = results.filter((r) => r.error === undefined).map((r) => r.name);
    if (stopped.length > 0) screen.log(`stopped: ${stopped.join('; ')}`);
    for (const r of results) {
      if (r.error !== undefined) {
        screen.log(`could not stop ${r.name}: ${r.error.message}`);
        code ||= 1;
      }
    }
    interruptions.dispose();
  }
  return code;
}

// The entry of `npm run demo` (node build/scripts/demo.js); nothing imports this file.
let options: DemoOptions | undefined;
try {
  options = parseDemoArgs(process.argv.slice(2));
} catch (err) {
  const code = (err as { code?: string }).code ?? '';
  if (!(err instanceof UsageError) && !code.startsWith('ERR_PARSE_ARGS')) throw err;
  process.stderr.write(`demo: ${(err as Error).message}\n\n${DEMO_HELP}\n`);
  process.exitCode = 2;
}
if (options === undefined) {
  if (process.exitCode === undefined) process.stdout.write(`${DEMO_HELP}\n`);
} else {
  process.exitCode = await runDemo(options);
}
