// A smoke test of the benchmark suite, so its code cannot rot: `npm run bench -- --tiny
// --json` (quick runs on small sizes) runs every scenario from this checkout (its own etcd, backends and clusters) and
// prints one JSON object with each scenario's figures, ratios and bars. No speed is
// asserted here; the figures are the benchmark's business, not the test's.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Row {
  contender: string;
  values: Record<string, { median: number; samples: number[] }>;
  ratioToBaseline?: number;
}
interface Result {
  id: string;
  settings: Record<string, unknown>;
  primary: string;
  groups: { name: string; rows: Row[] }[];
  bars: { label: string; pass: boolean; detail: string }[];
}

t.test('npm run bench -- --tiny --json runs every scenario and reports figures, ratios and bars', async (t) => {
  const entry = fileURLToPath(new URL('../../scripts/bench/index.js', import.meta.url));
  // At the lowest CPU priority: the test files running beside it keep their timing.
  const child = spawn('nice', ['-n', '19', process.execPath, entry, '--tiny', '--json'], { cwd: fileURLToPath(new URL('../../..', import.meta.url)) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  t.teardown(() => child.kill('SIGKILL'));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0, `the bench exited 0 (stderr tail: ${stderr.slice(-400)})`);
  const report = JSON.parse(stdout) as { machine: string; date: string; results: Result[] };
  t.match(report, { machine: /cores/, date: /^\d{4}-/ });
  t.same(
    report.results.map((r) => r.id),
    ['leases', 'rpc', 'capped', 'slow-backend', 'l4-refresh', 'multi-process', 'discovery', 'propagation', 'scale', 'fleet', 'subsetting'],
    'every scenario ran',
  );
  for (const result of report.results) {
    t.ok(Object.keys(result.settings).length > 0, `${result.id}: states its settings`);
    t.ok(result.groups.length > 0 && result.groups.every((g) => g.rows.length > 0), `${result.id}: has rows`);
    const figures = result.groups.flatMap((g) => g.rows.flatMap((r) => Object.values(r.values).map((v) => v.median)));
    t.ok(figures.length > 0 && figures.every((v) => typeof v === 'number' && !Number.isNaN(v)), `${result.id}: every figure is a number`);
    t.ok(result.bars.every((b) => typeof b.pass === 'boolean' && b.detail.length > 0), `${result.id}: bars carry a verdict and a figure`);
  }
  const leases = report.results.find((r) => r.id === 'leases')!;
  t.ok(leases.groups[0]!.rows.some((r) => typeof r.ratioToBaseline === 'number'), 'ratios to the peer are in the JSON');
});
