// Prometheus metrics scraped over HTTP after a scripted scenario against a real etcd and
// a real backend: each documented series is present with the value the scenario implies.
import t from 'tap';
import { createPool } from '../lib/pool/pool.js';
import { serveMetrics } from '../lib/pool/metrics.js';
import { silentLogger } from '../lib/core/logger.js';
import { main } from '../lib/cli/main.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { startBackend } from '../testkit/tap-backend.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';

const cluster = await startEtcd(t);
const backend = await startBackend(t);

/** Parses the Prometheus text format into `name{labels}` → value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await response.text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

t.test('the documented series, with the values of a scripted scenario', async (t) => {
  await etcdctl(cluster, 'put', 'metrics/a', `${backend.address}#2`);
  await etcdctl(cluster, 'put', 'metrics/broken', 'not-an-address');
  const pool = createPool({ target: 'etcd:///metrics/', etcd: { hosts: cluster.hosts, retryMaxMillis: 300 }, logger: silentLogger, maxStreamsPerAnchor: 1 });
  t.teardown(() => pool.close());
  const registry = pool.metrics();
  const port = await freePort();
  const server = await serveMetrics(registry, port);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byState.READY === 2, { what: '2 READY anchors' });

  // Scenario: 3 leases taken (one waits for a release), 1 acquire times out.
  const first = await pool.acquire();
  const second = await pool.acquire();
  await t.rejects(pool.acquire({ timeoutMillis: 30 }), { code: 'ANCHORPOOL_ACQUIRE_TIMEOUT' });
  const waiting = pool.acquire();
  first.release();
  const third = await waiting;

  const m = await scrape(port);
  const expect: Record<string, number> = {
    anchorpool_endpoints: 1,
    anchorpool_invalid_keys: 1,
    anchorpool_anchors_wanted: 2,
    'anchorpool_anchors{state="READY"}': 2,
    'anchorpool_anchors{state="CONNECTING"}': 0,
    'anchorpool_anchors{state="DRAINING"}': 0,
    anchorpool_leases_held: 2,
    anchorpool_leases_acquired_total: 3,
    anchorpool_waiters: 0,
    anchorpool_acquire_timeouts_total: 1,
    anchorpool_resyncs_total: 0,
    anchorpool_etcd_connected: 1,
    anchorpool_acquire_wait_seconds_count: 3,
    'anchorpool_acquire_wait_seconds_bucket{le="0.0001"}': 2,
  };
  for (const [name, value] of Object.entries(expect)) t.equal(m.get(name), value, name);
  t.ok((m.get('anchorpool_acquire_wait_seconds_sum') ?? 0) > 0, 'the waited acquire adds to the wait time');
  second.release();
  third.release();

  // etcd down: connected drops to 0; back up: a resync is counted.
  await cluster.members[0]!.kill('SIGKILL');
  await waitFor(async () => (await scrape(port)).get('anchorpool_etcd_connected') === 0, { what: 'etcd_connected 0' });
  await cluster.members[0]!.start();
  await waitFor(async () => (await scrape(port)).get('anchorpool_etcd_connected') === 1, { timeoutMs: 15_000, what: 'etcd_connected 1' });
  const after = await scrape(port);
  t.ok((after.get('anchorpool_resyncs_total') ?? 0) >= 1, 'the reconnect resync is counted');
  t.equal(after.get('anchorpool_leases_held'), 0);
});

t.test('anchorpool status --metrics-port serves the same series until interrupted', async (t) => {
  await etcdctl(cluster, 'put', 'metrics-cli/a', `${backend.address}#3`);
  const port = await freePort();
  let stop!: () => void;
  const interrupted = new Promise<void>((resolve) => (stop = resolve));
  const err: string[] = [];
  const running = main(['status', '--etcd', cluster.hosts.join(','), '--prefix', 'metrics-cli/', '--metrics-port', String(port)], {
    out: () => undefined,
    err: (line) => err.push(line),
    env: {},
    interrupted,
  });
  await waitFor(() => err.some((l) => l.includes(`:${port}/metrics`)), { what: 'the metrics server to start' });
  const m = await scrape(port);
  t.equal(m.get('anchorpool_endpoints'), 1);
  t.equal(m.get('anchorpool_anchors_wanted'), 3);
  t.equal(m.get('anchorpool_anchors{state="READY"}'), 3);
  stop();
  t.equal(await running, 0);
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'the server is closed after the interrupt');
});
