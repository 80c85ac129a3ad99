// How a Frame looks: the live bar chart for a terminal (colors, eighth-block bars, fitted
// to its width), the compact plain snapshot for logs and pipes, and the summary at the
// end. Every anchor and backend row names its zone (the pool's own in bold), and a small
// table shows, per zone, its anchors in rotation, the share of the calls the pool gives it
// now and the leases granted in it over the last second, so calls leaving the pool's zone
// show. Next to each anchor's state is its health, as the pool's health check last heard
// it; an anchor that is not SERVING is marked out of rotation, one whose key outlier
// detection ejected is marked ejected, and one the pool opened above its key's N for load
// (maxAnchors) is marked extra after its bar (it takes leases like the others). Each
// anchor's bar has its backend's color, so the rows of one backend read as a group; the bar scale follows the largest rate and shrinks back slowly, so bars do not
// jump when one sample is off.
import { padEnd, padStart, visibleLength, type Paint, type StyleName } from './ansi.js';
import type { AnchorCalls } from './load.js';
import type { AnchorRow, BackendRow, Frame, ZoneFrame, ZoneMode } from './sampler.js';

export interface ChartContext {
  target: string;
  etcdEndpoints: readonly string[];
  loops: number;
  /** Seconds of load; undefined in --interactive. */
  durationSeconds: number | undefined;
}

const BACKEND_STYLES: StyleName[] = ['cyan', 'brightYellow', 'brightMagenta', 'brightGreen', 'brightBlue', 'white'];
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
/** Per frame drawn (4 a second on a terminal): after a peak the scale shrinks by about a third a second. */
const SCALE_DECAY = 0.9;
const SEPARATOR = '  ·  ';

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const percent = (fraction: number): string => `${Math.round(fraction * 100)}%`;

/** A key without a zone counts as in every zone (so in the pool's). */
const NO_ZONE = '-';
const zoneLabel = (zone: string | undefined): string => zone ?? NO_ZONE;

/** What the pool does with the calls in each mode of pool.stats().zones (the demo keeps the default thresholds). */
export function zoneModeText(mode: ZoneMode, local: string): string {
  switch (mode) {
    case 'local':
      return `every call stays in zone ${local}`;
    case 'spill':
      return `zone ${local} keeps the share of its anchors in rotation, the rest spills to other zones`;
    case 'panic':
      return `under half of zone ${local} in rotation: calls spread over all zones by anchors in rotation`;
    case 'no-local':
      return `no key in zone ${local}: calls spread over all zones`;
    case 'none':
      return 'no anchor in rotation in any zone';
  }
}

/** Each zone's part of the leases granted over the last second ('-' while none was). */
function zoneParts(zones: ZoneFrame): string[] {
  const all = zones.rows.reduce((sum, z) => sum + z.rate, 0);
  return zones.rows.map((z) => `${z.zone} ${all > 0 ? percent(z.rate / all) : '-'}`);
}

/** The backends registered in a zone now (those without a zone are in the pool's). */
function backendsIn(frame: Frame, zone: string, local: string): string {
  const names = frame.backends.filter((b) => b.anchors > 0 && (b.zone ?? local) === zone).map((b) => b.name);
  return names.length === 0 ? 'no keys' : names.join(', ');
}

function stateStyle(row: AnchorRow): StyleName | undefined {
  if (row.state === 'CLOSED') return 'dim';
  if (row.draining) return 'magenta';
  if (row.state === 'READY') return 'green';
  if (row.state === 'TRANSIENT_FAILURE') return 'red';
  return 'yellow';
}

const stateLabel = (row: AnchorRow): string => (row.draining ? `${row.state}, draining` : row.state);

/** A closed row has no health to show. */
const healthLabel = (row: AnchorRow): string => (row.state === 'CLOSED' ? '' : row.health);

function healthStyle(row: AnchorRow): StyleName | undefined {
  if (row.health === 'SERVING') return 'green';
  if (row.health === 'UNCHECKED') return 'dim';
  if (row.health === 'UNKNOWN') return 'yellow';
  return 'red';
}

/** Health keeps it from leases (NOT_SERVING, SERVICE_UNKNOWN, or UNKNOWN until the first answer). */
const outOfRotation = (row: AnchorRow): boolean => row.state !== 'CLOSED' && row.health !== 'SERVING' && row.health !== 'UNCHECKED';
const OUT_OF_ROTATION = 'out of rotation';
const EJECTED = 'ejected';
/** After the rate of an anchor opened above its key's N for load (it is in rotation: a mark, not instead of the bar). */
const EXTRA = 'extra';
const extraMark = (row: AnchorRow): boolean => row.extra && row.state !== 'CLOSED';

/** Why a row takes no leases, if health or an ejection keeps it out (a draining or connecting row shows that in its state). */
function rotationMark(row: AnchorRow): string | undefined {
  if (row.state === 'CLOSED') return undefined;
  if (outOfRotation(row)) return row.ejected ? `${OUT_OF_ROTATION}, ${EJECTED}` : OUT_OF_ROTATION;
  return row.ejected ? EJECTED : undefined;
}

/** Joins parts with separators into lines of at most `width` columns, breaking between parts. */
function pack(parts: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    if (line === '') line = part;
    else if (visibleLength(line) + SEPARATOR.length + visibleLength(part) <= width) line += SEPARATOR + part;
    else {
      lines.push(line);
      line = `  ${part}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** A bar of `value / scale` of `width` columns: eighth blocks on a terminal, '#' in plain text. */
function bar(value: number, scale: number, width: number, unicode: boolean): string {
  if (scale <= 0 || value <= 0) return '';
  const cells = Math.min(width, (value / scale) * width);
  if (!unicode) return '#'.repeat(Math.max(1, Math.round(cells)));
  const eighths = Math.max(1, Math.round(cells * 8));
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

export class Chart {
  readonly #context: ChartContext;
  readonly #styles = new Map<string, StyleName>();
  #anchorScale = 0;
  #backendScale = 0;
  #zoneScale = 0;

  constructor(context: ChartContext) {
    this.#context = context;
  }

  /** Gives each backend address its color, in the order the demo starts them. */
  addBackend(address: string): void {
    if (!this.#styles.has(address)) this.#styles.set(address, BACKEND_STYLES[this.#styles.size % BACKEND_STYLES.length]!);
  }

  #scales(frame: Frame): { anchor: number; backend: number } {
    const maxAnchor = Math.max(0, ...frame.anchors.map((a) => a.rate));
    const maxBackend = Math.max(0, ...frame.backends.map((b) => b.rate));
    this.#anchorScale = Math.max(maxAnchor, this.#anchorScale * SCALE_DECAY);
    this.#backendScale = Math.max(maxBackend, this.#backendScale * SCALE_DECAY);
    return { anchor: this.#anchorScale, backend: this.#backendScale };
  }

  #header(frame: Frame, paint: Paint, width: number): string[] {
    const c = this.#context;
    const clock =
      c.durationSeconds === undefined ? `${seconds(frame.elapsed)} · Ctrl-C to stop` : `${seconds(Math.min(frame.elapsed, c.durationSeconds * 1000))} of ${c.durationSeconds} s`;
    const etcd = frame.etcd.connected
      ? `etcd ${c.etcdEndpoints.join(',')} rev ${frame.etcd.revision}`
      : paint('red', `etcd ${c.etcdEndpoints.join(',')} DISCONNECTED${frame.etcd.lastError ? `: ${frame.etcd.lastError}` : ''}`);
    const errors = frame.errors > 0 ? paint('red', `${count(frame.errors)} errors${frame.lastError ? ` (last: ${frame.lastError})` : ''}`) : '0 errors';
    const lines = [
      ...pack([paint('bold', 'anchorpool demo'), clock, `pool on ${c.target}`, etcd], width),
      ...pack([`load: ${c.loops} loops${frame.burstLoops > 0 ? ` + a burst of ${frame.burstLoops}` : ''}, one lease per call`, paint('bold', `${count(frame.callRate)} calls/s`), `${count(frame.calls)} calls`, errors], width),
      ...pack([`pool: ${plural(frame.endpoints, 'key')}`, `${plural(frame.active, 'anchor')} (${frame.ready} READY, ${frame.eligible} in rotation${frame.extra > 0 ? `, ${frame.extra} extra` : ''})`, `${frame.draining} draining`, `${frame.leased} leased`, `${frame.waiting} waiting`], width),
    ];
    for (const r of frame.invalid) lines.push(paint('red', `invalid value under ${r.key}: ${r.reason} (the key keeps its last valid value)`));
    return lines;
  }

  /** The live view for a terminal `width` columns wide. */
  live(frame: Frame, width: number, paint: Paint, unicode: boolean): string[] {
    const scale = this.#scales(frame);
    const style = (address: string): StyleName | undefined => this.#styles.get(address);
    const numW = 7;
    const lines = this.#header(frame, paint, width);

    const anchorLabels = frame.anchors.map((a) => `${a.key}#${a.anchor}`);
    const keyW = Math.max(18, ...anchorLabels.map((l) => l.length));
    const addrW = Math.max(15, ...frame.anchors.map((a) => a.address.length), ...frame.backends.map((b) => b.address.length));
    const local = frame.zones?.local;
    const zoneW = Math.max(4, ...frame.anchors.map((a) => zoneLabel(a.zone).length), ...frame.backends.map((b) => zoneLabel(b.zone).length));
    const zoneCell = (zone: string | undefined, dim: boolean): string =>
      padEnd(paint(dim ? 'dim' : zone !== undefined && zone === local ? 'bold' : zone === undefined ? 'dim' : undefined, zoneLabel(zone)), zoneW);
    const stateW = Math.max(10, ...frame.anchors.map((a) => stateLabel(a).length));
    const healthW = Math.max(11, ...frame.anchors.map((a) => healthLabel(a).length));
    const markW = frame.anchors.some(extraMark) ? 2 + EXTRA.length : 0;
    // Room for the marks: on a narrow terminal the rare "out of rotation, ejected" may push its row's rate a few columns right.
    const barW = Math.max(OUT_OF_ROTATION.length + 1, Math.min(48, width - (2 + keyW + 2 + addrW + 2 + zoneW + 2 + stateW + 2 + healthW + 2 + 1 + numW + markW)));
    lines.push('', paint('bold', 'Anchors: leases per second handed out on each, over the last second'));
    lines.push(paint('dim', `  ${padEnd('KEY#INDEX', keyW)}  ${padEnd('ADDRESS', addrW)}  ${padEnd('ZONE', zoneW)}  ${padEnd('STATE', stateW)}  ${padEnd('HEALTH', healthW)}  ${padEnd('LEASES/S', barW)} ${padStart('', numW)}`));
    if (frame.anchors.length === 0) lines.push(paint('yellow', '  (no anchors: nothing valid is registered under the prefix)'));
    frame.anchors.forEach((a, i) => {
      const closed = a.state === 'CLOSED';
      const label = padEnd(closed ? paint('dim', anchorLabels[i]!) : anchorLabels[i]!, keyW);
      const address = padEnd(paint(closed ? 'dim' : style(a.address), a.address), addrW);
      const state = padEnd(paint(stateStyle(a), stateLabel(a)), stateW);
      const health = padEnd(paint(healthStyle(a), healthLabel(a)), healthW);
      // Leases still out when it left finish, so the bar can fade for a moment before the mark shows.
      const mark = rotationMark(a);
      const drawn = mark !== undefined && a.rate < 1 ? paint('red', mark) : paint(style(a.address), bar(a.rate, scale.anchor, barW, unicode));
      const rate = closed ? '' : `${padEnd(drawn, barW)} ${padStart(count(a.rate), numW)}${extraMark(a) ? `  ${paint('bold', EXTRA)}` : ''}`;
      lines.push(`  ${label}  ${address}  ${zoneCell(a.zone, closed)}  ${state}  ${health}  ${rate}`);
    });

    const nameW = Math.max(7, ...frame.backends.map((b) => b.name.length));
    const pidW = Math.max(3, ...frame.backends.map((b) => String(b.pid ?? '-').length));
    const connW = Math.max(11, ...frame.backends.map((b) => 3 + (b.connections ?? 0)));
    const backendBarW = Math.max(10, Math.min(40, width - (2 + nameW + 2 + addrW + 2 + zoneW + 2 + pidW + 2 + 7 + 2 + connW + 2 + 1 + numW)));
    lines.push('', paint('bold', 'Backends: connections and calls per second, as each server counts them'));
    lines.push(
      paint('dim', `  ${padEnd('BACKEND', nameW)}  ${padEnd('ADDRESS', addrW)}  ${padEnd('ZONE', zoneW)}  ${padStart('PID', pidW)}  ${padStart('ANCHORS', 7)}  ${padEnd('CONNECTIONS', connW)}  ${padEnd('CALLS/S', backendBarW)}`),
    );
    for (const b of frame.backends) {
      const conns =
        b.connections === undefined
          ? paint('red', b.running ? '?' : 'stopped')
          : `${padStart(String(b.connections), 2)} ${paint(style(b.address), (unicode ? '■' : 'o').repeat(b.connections))}`;
      const anchors = b.anchors === 0 ? paint('dim', padStart('-', 7)) : padStart(String(b.anchors), 7);
      const calls =
        b.anchors === 0 && b.rate < 1
          ? paint('dim', 'not registered in etcd')
          : `${padEnd(paint(style(b.address), bar(b.rate, scale.backend, backendBarW, unicode)), backendBarW)} ${padStart(count(b.rate), numW)}`;
      lines.push(`  ${padEnd(paint(style(b.address), b.name), nameW)}  ${padEnd(b.address, addrW)}  ${zoneCell(b.zone, b.anchors === 0)}  ${padStart(String(b.pid ?? '-'), pidW)}  ${anchors}  ${padEnd(conns, connW)}  ${calls}`);
    }
    if (frame.zones !== undefined) lines.push(...this.#liveZones(frame, frame.zones, width, paint, unicode, numW));
    return lines;
  }

  /** Per zone: its backends, its anchors in rotation, the pool's share for it now, and the leases granted in it over the last second. */
  #liveZones(frame: Frame, zones: ZoneFrame, width: number, paint: Paint, unicode: boolean, numW: number): string[] {
    const all = zones.rows.reduce((sum, z) => sum + z.rate, 0);
    this.#zoneScale = Math.max(all, this.#zoneScale * SCALE_DECAY);
    const modeStyle: StyleName = zones.mode === 'local' ? 'green' : zones.mode === 'spill' ? 'yellow' : 'red';
    const zoneW = Math.max(4, ...zones.rows.map((z) => z.zone.length));
    const names = zones.rows.map((z) => backendsIn(frame, z.zone, zones.local));
    const namesW = Math.max(8, ...names.map((n) => n.length));
    const rotW = 11;
    const shareW = 9;
    const barW = Math.max(10, Math.min(40, width - (2 + zoneW + 2 + namesW + 2 + rotW + 2 + shareW + 2 + 1 + numW + 6)));
    const lines = [
      '',
      `${paint('bold', 'Zones: calls by zone over the last second')} (pool.stats().zones picks; the pool is in zone ${zones.local})`,
      `  mode ${paint(modeStyle, zones.mode)}: ${zoneModeText(zones.mode, zones.local)}`,
      paint('dim', `  ${padEnd('ZONE', zoneW)}  ${padEnd('BACKENDS', namesW)}  ${padEnd('IN ROTATION', rotW)}  ${padEnd('SHARE NOW', shareW)}  ${padEnd('LEASES/S', barW)} ${padStart('', numW)}  PART`),
    ];
    zones.rows.forEach((z, i) => {
      const zone = padEnd(paint(z.zone === zones.local ? 'bold' : undefined, z.zone), zoneW);
      const rotation = padEnd(paint(z.healthy < z.total ? 'red' : undefined, `${z.healthy} of ${z.total}`), rotW);
      const share = padEnd(percent(z.share), shareW);
      const part = all > 0 ? padStart(percent(z.rate / all), 4) : padStart('-', 4);
      const drawn = padEnd(paint(z.zone === zones.local ? 'green' : 'yellow', bar(z.rate, this.#zoneScale, barW, unicode)), barW);
      lines.push(`  ${zone}  ${padEnd(names[i]!, namesW)}  ${rotation}  ${share}  ${drawn} ${padStart(count(z.rate), numW)}  ${part}`);
    });
    return lines;
  }

  /** The compact plain-text snapshot for logs and pipes (no colors, no redraw). */
  plain(frame: Frame): string[] {
    const scale = this.#scales(frame);
    const labels = frame.anchors.map((a) => `${a.key}#${a.anchor}`);
    const keyW = Math.max(0, ...labels.map((l) => l.length));
    const addrW = Math.max(0, ...frame.anchors.map((a) => a.address.length));
    const stateW = Math.max(0, ...frame.anchors.map((a) => stateLabel(a).length));
    const healthW = Math.max(0, ...frame.anchors.map((a) => healthLabel(a).length));
    const zoneW = Math.max(0, ...frame.anchors.map((a) => zoneLabel(a.zone).length));
    const lines = [
      `[t=${seconds(frame.elapsed)}] ${count(frame.callRate)} calls/s, ${count(frame.calls)} calls, ${count(frame.errors)} errors; ` +
        `${frame.burstLoops > 0 ? `a burst of ${frame.burstLoops} more loops; ` : ''}` +
        `${frame.endpoints} keys, ${frame.active} anchors (${frame.ready} READY, ${frame.eligible} in rotation${frame.extra > 0 ? `, ${frame.extra} extra` : ''}), ${frame.draining} draining; ` +
        `etcd rev ${frame.etcd.revision}${frame.etcd.connected ? '' : ' DISCONNECTED'}`,
    ];
    frame.anchors.forEach((a, i) => {
      const mark = rotationMark(a);
      const drawn = (mark !== undefined ? `(${mark})` : bar(a.rate, scale.anchor, 20, false)) + (extraMark(a) ? `  (${EXTRA})` : '');
      const rate = a.state === 'CLOSED' ? '' : `${padStart(count(a.rate), 7)} leases/s  ${drawn}`;
      lines.push(`  anchor ${labels[i]!.padEnd(keyW)}  ${a.address.padEnd(addrW)}  zone ${zoneLabel(a.zone).padEnd(zoneW)}  ${stateLabel(a).padEnd(stateW)}  ${healthLabel(a).padEnd(healthW)}  ${rate}`.trimEnd());
    });
    for (const b of frame.backends) {
      const conns = b.connections === undefined ? (b.running ? 'connections unknown' : 'stopped') : `${plural(b.connections, 'connection')} (server side)`;
      lines.push(`  backend ${b.name} ${b.address} (zone ${zoneLabel(b.zone)}): ${plural(b.anchors, 'anchor')}, ${conns}, ${count(b.rate)} calls/s`);
    }
    const zones = frame.zones;
    if (zones !== undefined) {
      const all = zones.rows.reduce((sum, z) => sum + z.rate, 0);
      this.#zoneScale = Math.max(all, this.#zoneScale * SCALE_DECAY);
      lines.push(`  zones: the pool is in zone ${zones.local}, mode ${zones.mode}; calls by zone over the last second: ${zoneParts(zones).join(' · ')}`);
      const names = zones.rows.map((z) => backendsIn(frame, z.zone, zones.local));
      const nameW = Math.max(0, ...names.map((n) => n.length));
      const zoneNameW = Math.max(0, ...zones.rows.map((z) => z.zone.length));
      zones.rows.forEach((z, i) => {
        lines.push(
          `  zone ${z.zone.padEnd(zoneNameW)}  ${names[i]!.padEnd(nameW)}  ${`${z.healthy} of ${z.total}`.padStart(7)} anchors in rotation  share ${percent(z.share).padStart(4)}  ` +
            `${padStart(count(z.rate), 7)} leases/s  ${bar(z.rate, this.#zoneScale, 20, false)}`.trimEnd(),
        );
      });
    }
    for (const r of frame.invalid) lines.push(`  invalid ${r.key}: ${r.reason}`);
    return lines;
  }
}

/** Calls that failed over the whole run: all of them, and those on each backend (with why, where the demo knows). */
export interface FailedCalls {
  total: number;
  byBackend: readonly { name: string; calls: number; why?: string }[];
}

function failedLine(failed: FailedCalls): string {
  if (failed.total === 0) return 'Failed calls: none';
  const parts = failed.byBackend.filter((b) => b.calls > 0).map((b) => `${b.name} ${count(b.calls)}${b.why === undefined ? '' : `, ${b.why}`}`);
  const elsewhere = failed.total - failed.byBackend.reduce((sum, b) => sum + b.calls, 0);
  if (elsewhere > 0) parts.push(`${count(elsewhere)} before a lease was taken`);
  return `Failed calls: ${count(failed.total)} (${parts.join('; ')})`;
}

/** Leases granted in each zone over the whole run (pool.stats().zones picks), the pool's zone first. */
export interface ZoneTotals {
  local: string;
  zones: readonly { zone: string; picks: number }[];
}

/**
 * What every anchor and every backend served over the whole run, each with its zone, the
 * leases granted per zone, and what failed; `extra` (key#index) were opened as extra anchors.
 */
export function summary(
  perAnchor: readonly AnchorCalls[],
  backends: readonly BackendRow[],
  failed: FailedCalls,
  extra: ReadonlySet<string> = new Set(),
  zones?: ZoneTotals,
): string[] {
  const keyW = Math.max(0, ...perAnchor.map((a) => `${a.key}#${a.anchor}`.length));
  const addrW = Math.max(0, ...perAnchor.map((a) => a.address.length));
  const zoneOf = (address: string): string => zoneLabel(backends.find((b) => b.address === address)?.zone);
  const zoneW = Math.max(0, ...perAnchor.map((a) => zoneOf(a.address).length));
  const lines = ['', 'Calls per anchor over the whole run (one lease each):'];
  for (const a of perAnchor) {
    const slot = `${a.key}#${a.anchor}`;
    lines.push(`  ${slot.padEnd(keyW)}  ${a.address.padEnd(addrW)}  zone ${zoneOf(a.address).padEnd(zoneW)}  ${padStart(count(a.calls), 9)}${extra.has(slot) ? `  (${EXTRA})` : ''}`);
  }
  lines.push(`Calls counted by each backend: ${backends.map((b) => `${b.name} ${count(b.calls)}`).join(', ')}`);
  if (zones !== undefined && zones.zones.length > 0) {
    const all = zones.zones.reduce((sum, z) => sum + z.picks, 0);
    const ordered = [...zones.zones].sort((a, b) => (a.zone === zones.local ? -1 : b.zone === zones.local ? 1 : a.zone.localeCompare(b.zone)));
    lines.push(
      `Leases by zone over the whole run (the pool is in zone ${zones.local}; pool.stats().zones picks): ` +
        ordered.map((z) => `${z.zone} ${count(z.picks)}${all > 0 ? ` (${percent(z.picks / all)})` : ''}`).join(', '),
    );
  }
  lines.push(failedLine(failed));
  return lines;
}
