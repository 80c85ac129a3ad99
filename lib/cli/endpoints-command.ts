/**
 * `anchorpool endpoints`: what discovery sees under a prefix — every key with its
 * address and anchors, the invalid keys with their reason, and the etcd revision.
 * One snapshot by default; --watch keeps printing changes until interrupted.
 * Exit code: 0 all valid, 1 invalid keys or etcd unreachable, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { createSource } from '../create-source.js';
import type { EndpointSnapshot, EndpointSource } from '../source.js';
import { isAnchorPoolError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { ETCD_FLAGS_HELP, etcdFlags, sourceOptionsFromFlags } from './etcd-flags.js';
import { UsageError } from './usage-error.js';

export const ENDPOINTS_HELP = `usage: anchorpool endpoints --prefix P [--etcd HOSTS] [--json] [--watch] [--timeout MS]

Print the endpoints anchorpool discovers under an etcd prefix (or a pass:/// target).

  --json                 print JSON instead of a table
  --watch                keep running and print every change (Ctrl-C to stop)
  --timeout MS           how long to wait for etcd (default 5000)

${ETCD_FLAGS_HELP}

Exit status: 0 all values valid, 1 invalid values found or etcd unreachable, 2 usage error.`;

export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  /** Resolves when the user asks to stop (Ctrl-C); used by --watch. */
  interrupted: Promise<void>;
}

function snapshotJson(snapshot: EndpointSnapshot) {
  return {
    revision: snapshot.revision,
    endpoints: [...snapshot.endpoints.values()].map((e) => ({ key: e.key, addr: e.addr, anchors: e.anchors, format: e.format })),
    invalid: [...snapshot.invalid.values()].map((r) => ({ key: r.key, reason: r.reason, keptPrevious: r.keptPrevious })),
  };
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

function printSnapshot(snapshot: EndpointSnapshot, io: CommandIo): void {
  io.out(`revision ${snapshot.revision}: ${snapshot.endpoints.size} endpoint(s), ${snapshot.invalid.size} invalid`);
  if (snapshot.endpoints.size > 0) {
    const rows = [['KEY', 'ADDRESS', 'ANCHORS', 'FORMAT']];
    for (const e of snapshot.endpoints.values()) rows.push([e.key, e.addr, String(e.anchors), e.format]);
    for (const line of table(rows)) io.out(line);
  }
  for (const r of snapshot.invalid.values()) {
    io.out(`INVALID ${r.key}: ${r.reason}${r.keptPrevious ? ' (serving its last valid value)' : ''}`);
  }
}

export async function endpointsCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...etcdFlags, json: { type: 'boolean' }, watch: { type: 'boolean' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(ENDPOINTS_HELP);
    return 0;
  }
  const timeoutMillis = values.timeout === undefined ? 5000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMillis) || timeoutMillis < 1) throw new UsageError(`--timeout must be a positive integer (ms), got ${values.timeout}`);
  let source: EndpointSource;
  try {
    source = createSource({ ...sourceOptionsFromFlags(values, io.env), logger: silentLogger });
  } catch (err) {
    if (isAnchorPoolError(err)) throw new UsageError(err.message);
    throw err;
  }
  try {
    const snapshot = await source.ready({ timeoutMillis });
    if (values.json) io.out(JSON.stringify(snapshotJson(snapshot), null, 2));
    else printSnapshot(snapshot, io);
    if (values.watch) {
      source.on('change', (c) => {
        const at = `revision ${c.revision}`;
        for (const e of c.added) io.out(values.json ? JSON.stringify({ event: 'added', key: e.key, addr: e.addr, anchors: e.anchors }) : `${at}  + ${e.key}  ${e.addr}  anchors=${e.anchors}`);
        for (const u of c.updated) io.out(values.json ? JSON.stringify({ event: 'updated', key: u.after.key, addr: u.after.addr, anchors: u.after.anchors }) : `${at}  ~ ${u.after.key}  ${u.after.addr}  anchors=${u.before.anchors}->${u.after.anchors}`);
        for (const e of c.removed) io.out(values.json ? JSON.stringify({ event: 'removed', key: e.key }) : `${at}  - ${e.key}`);
      });
      source.on('invalid', (r) => io.out(values.json ? JSON.stringify({ event: 'invalid', key: r.key, reason: r.reason }) : `INVALID ${r.key}: ${r.reason}`));
      source.on('disconnected', ({ error }) => io.err(`etcd disconnected: ${error.message}`));
      source.on('connected', ({ revision }) => io.err(`etcd connected at revision ${revision}`));
      await io.interrupted;
    }
    return source.snapshot().invalid.size > 0 ? 1 : 0;
  } catch (err) {
    io.err(`anchorpool endpoints: ${(err as Error).message}`);
    return 1;
  } finally {
    await source.close();
  }
}
