/**
 * `anchorpool status`: one snapshot of what the pool sees under a prefix — every key
 * with its address, wanted anchors (N, or N-M when it may grow) and zone, the invalid keys with
 * their reason, the etcd revision — and, with --connect, each anchor dialled and counted
 * by state after up to --timeout (and how many are extra, above N), and with --health
 * their grpc.health.v1 status too. With --metrics-port it
 * keeps running and serves Prometheus metrics. With --subset-size, the subset a client
 * keeps (subset-view.ts); --subset-mode coordinated reads the registered clients and
 * never dials, since status's own pool would join them.
 * Exit code: 0 all is well, 1 invalid keys, unreachable backends or etcd unreachable,
 * 2 usage error.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../discovery/create-source.js';
import { isAnchorPoolError } from '../core/errors.js';
import { consoleLogger } from '../core/logger.js';
import { serveMetrics } from '../pool/metrics.js';
import { createPool } from '../pool/pool.js';
import type { CommandIo } from './command-io.js';
import { ETCD_FLAGS_HELP, etcdFlags, sourceOptionsFromFlags } from './etcd-flags.js';
import { renderReport, reportFromSnapshot, withAnchorStates, withFleet, withSubset, type StatusReport } from './report.js';
import { chooseSubset, rendezvousOrder } from '../anchors/subset.js';
import { MAX_SUBSET_SIZE } from '../anchors/anchor-options.js';
import { resolveSourceOptions } from '../discovery/source-options.js';
import type { CoordinationSettings } from '../discovery/client-membership.js';
import type { EndpointSnapshot } from '../discovery/source.js';
import { checkSubsetFlags, clientsPrefixFor, fleetSubsets, listClients, parseSubsetMode, placeOf, type SubsetFlags } from './subset-view.js';
import type { Logger } from '../core/logger.js';
import { UsageError } from './usage-error.js';

export const STATUS_HELP = `usage: anchorpool status --prefix P [--etcd HOSTS] [--json] [--connect] [--health | --health-service NAME] [--subset-size S [--client-id ID] [--subset-mode rendezvous|coordinated [--clients-prefix P]]] [--timeout MS] [--metrics-port PORT]

Print what anchorpool sees under an etcd prefix (or a pass:/// target): every key with
its address and anchors (N, or N-M for a key with maxAnchors M), its zone (a ZONE
column when any key names one, '-' for the others), invalid keys with their reason,
and the etcd revision.

  --json                 print JSON instead of a table
  --connect              dial every anchor and report them by state (waits up to --timeout),
                         and how many are extra (above N): normally 0, since status makes
                         no calls that could fill its anchors
  --health               also run a grpc.health.v1 check on every anchor (implies --connect)
  --health-service NAME  the service name the check asks for (default '': the whole server)
  --timeout MS           how long to wait for etcd and for anchors to connect (default 5000)
  --metrics-port PORT    keep running and serve Prometheus metrics at :PORT/metrics (implies --connect)
  --subset-size S        show the subset a client keeps (as the subset option {size: S}): a SUBSET
                         column says why each key is in it ('chosen'; with --connect also 'failed, kept
                         to see it return' and 'leaving, until its replacement serves') or '-'
  --client-id ID         the client whose subset to show (the subset option's clientId); required
                         without --connect in rendezvous mode, else status's own pool gets a random one
  --subset-mode MODE     rendezvous (default) or coordinated (the subset option's mode). Coordinated
                         reads the clients registered under the clients prefix (status registers
                         nothing, so no --connect): with --client-id, that client's rank among them
                         and its subset; without, a CLIENTS column (how many clients keep each key)
                         and the clients (id, host, pid, since)
  --clients-prefix P     where coordinated clients register (the subset option's clientsPrefix;
                         default anchorpool.clients/ + the backends' prefix); must not overlap it
  --verbose              log discovery and connection events to stderr

${ETCD_FLAGS_HELP}

Exit status: 0 all well, 1 invalid values, unreachable or unhealthy backends or etcd unreachable, 2 usage error.`;

export const statusFlags = {
  ...etcdFlags,
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 5000;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 1) throw new UsageError(`--timeout must be a positive integer (ms), got ${text}`);
  return ms;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--metrics-port must be a port number, got ${text}`);
  return port;
}

/** Options that fail validation are the user's typing: a usage error (exit 2). */
export function asUsage<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (isAnchorPoolError(err)) throw new UsageError(err.message);
    throw err;
  }
}

function parseSubsetSize(text: string): number {
  const size = Number(text);
  if (!Number.isInteger(size) || size < 1 || size > MAX_SUBSET_SIZE) throw new UsageError(`--subset-size must be an integer from 1 to ${MAX_SUBSET_SIZE}, got ${text}`);
  return size;
}

/** The subset flags, checked; undefined without --subset-size. */
function subsetFromFlags(values: { 'subset-size'?: string | undefined; 'client-id'?: string | undefined; 'subset-mode'?: string | undefined; 'clients-prefix'?: string | undefined }): SubsetFlags | undefined {
  const mode = parseSubsetMode(values['subset-mode']);
  if (values['subset-size'] === undefined) {
    for (const flag of ['client-id', 'subset-mode', 'clients-prefix'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --subset-size`);
    return undefined;
  }
  return checkSubsetFlags({ size: parseSubsetSize(values['subset-size']), mode, clientId: values['client-id'], clientsPrefix: values['clients-prefix'] });
}

/**
 * The subset a client keeps, not dialled: no key has failed yet, so it is the first keys
 * of the client's order. Rendezvous: by the client's own ranking. Coordinated: the
 * clients listed once (nothing registered), and one client's subset from its place among
 * them, or (no client named) how many of them keep each key.
 */
async function withSubsetView(
  report: StatusReport,
  snapshot: EndpointSnapshot,
  subset: SubsetFlags,
  coordination: CoordinationSettings | undefined,
  deadline: number,
  logger: Logger,
): Promise<StatusReport> {
  const keys = snapshot.endpoints.keys();
  const { size, clientId } = subset;
  if (coordination === undefined) {
    const chosen = chooseSubset(rendezvousOrder(clientId!, keys), size, () => 'unknown');
    return withSubset(report, { size, mode: 'rendezvous', clientId: clientId!, keys: chosen.map((key) => ({ key, why: 'chosen' })) });
  }
  const clients = await listClients(coordination, deadline, logger).catch((err: unknown) => {
    throw new Error(`listing the subset clients under ${JSON.stringify(coordination.clientsPrefix)} failed: ${(err as Error).message}`, { cause: err });
  });
  const ids = clients.map((c) => c.clientId);
  if (clientId !== undefined) {
    const { subset: chosen, ...place } = placeOf(clientId, ids, keys, size);
    return withSubset(report, { size, mode: 'coordinated', clientId, keys: chosen.map((key) => ({ key, why: 'chosen' })) }, { clientsPrefix: coordination.clientsPrefix, ...place });
  }
  const fleet = fleetSubsets(ids, keys, size);
  return withFleet(
    report,
    { size, clientsPrefix: coordination.clientsPrefix },
    fleet.counts,
    clients.map((c, rank) => ({ ...c, rank, keys: fleet.subsets[rank]! })),
  );
}

function print(report: StatusReport, json: boolean | undefined, io: CommandIo): void {
  if (json) io.out(JSON.stringify(report, null, 2));
  else for (const line of renderReport(report)) io.out(line);
}

export async function statusCommand(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...statusFlags,
      connect: { type: 'boolean' },
      health: { type: 'boolean' },
      'health-service': { type: 'string' },
      'metrics-port': { type: 'string' },
      'subset-size': { type: 'string' },
      'client-id': { type: 'string' },
      'subset-mode': { type: 'string' },
      'clients-prefix': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(STATUS_HELP);
    return 0;
  }
  const timeoutMillis = parseTimeout(values.timeout);
  const metricsPort = values['metrics-port'] === undefined ? undefined : parsePort(values['metrics-port']);
  const logger = consoleLogger(values.verbose ? 'info' : 'error', io.err);
  const options = { ...sourceOptionsFromFlags(values, io.env), logger };
  const healthService = values['health-service'] ?? (values.health ? '' : undefined);
  const subset = subsetFromFlags(values);
  const clientId = subset?.clientId;
  // --health, --health-service and --metrics-port dial as --connect does.
  const dialledBy = values.connect ? '--connect' : values.health ? '--health' : values['health-service'] !== undefined ? '--health-service' : metricsPort !== undefined ? '--metrics-port' : undefined;
  if (subset?.mode === 'coordinated' && dialledBy !== undefined) {
    throw new UsageError(
      `--subset-mode coordinated with ${dialledBy}${dialledBy === '--connect' ? '' : ' (which dials, as --connect does)'} would register this command as a client and move every other client's subset; drop ${dialledBy}`,
    );
  }
  if (dialledBy === undefined) {
    if (subset?.mode === 'rendezvous' && clientId === undefined) throw new UsageError('--subset-size without --connect needs --client-id (whose subset to show)');
    // The clients prefix is checked before etcd is dialled: a wrong one is the user's typing.
    const coordination = subset?.mode === 'coordinated' ? asUsage(() => clientsPrefixFor(resolveSourceOptions(options).etcd, subset.clientsPrefix)) : undefined;
    const source = asUsage(() => createSource(options));
    try {
      const snapshot = await source.ready({ timeoutMillis });
      let report = reportFromSnapshot(snapshot, source.status());
      if (subset !== undefined) report = await withSubsetView(report, snapshot, subset, coordination, Date.now() + timeoutMillis, logger);
      print(report, values.json, io);
      return report.invalid.length > 0 ? 1 : 0;
    } catch (err) {
      io.err(`anchorpool status: ${(err as Error).message}`);
      return 1;
    } finally {
      await source.close();
    }
  }

  const pool = asUsage(() =>
    createPool({
      ...options,
      readyTimeoutMillis: timeoutMillis,
      ...(healthService !== undefined && { healthCheck: { serviceName: healthService } }),
      ...(subset !== undefined && { subset: { size: subset.size, ...(clientId !== undefined && { clientId }) } }),
    }),
  );
  try {
    const deadline = Date.now() + timeoutMillis;
    // No READY anchor at all is a finding to report, not a reason to stop here.
    await pool.ready({ timeoutMillis }).catch((err: unknown) => {
      if (!isAnchorPoolError(err) || err.code !== 'ANCHORPOOL_READY_TIMEOUT') throw err;
    });
    // Wait while anchors connect, and while connected ones still wait for their first health status.
    const settling = (): boolean => pool.anchors().some((a) => a.state === 'CONNECTING' || a.state === 'IDLE' || (a.state === 'READY' && a.health === 'UNKNOWN'));
    while (Date.now() < deadline && settling()) await sleep(50);
    const subset = pool.stats().subset;
    const base = reportFromSnapshot(pool.snapshot(), pool.stats().source);
    const report = withAnchorStates(subset === undefined ? base : withSubset(base, subset), pool.anchors(), pool.stats(), healthService !== undefined);
    print(report, values.json, io);
    if (metricsPort !== undefined) {
      const server = await serveMetrics(pool.metrics(), metricsPort);
      const address = server.address();
      io.err(`serving metrics at http://127.0.0.1:${typeof address === 'object' && address ? address.port : metricsPort}/metrics (Ctrl-C to stop)`);
      await io.interrupted;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    return report.invalid.length > 0 || report.unreachable.length > 0 || report.unhealthy.length > 0 ? 1 : 0;
  } catch (err) {
    io.err(`anchorpool status: ${(err as Error).message}`);
    return 1;
  } finally {
    await pool.close();
  }
}
