// npm run bench: every scenario, one after the other, in one run.
//   --quick        shorter runs (the whole suite in under 2 minutes)
//   --json         print the results as JSON instead of tables
//   --only a,b     run only these scenario ids
// Also writes bench-report/index.html (charts) and bench-report/results.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { cappedScenario } from './capped.js';
import { discoveryScenario } from './discovery.js';
import { leasesScenario } from './leases.js';
import { multiProcessScenario } from './multi-process.js';
import { propagationScenario } from './propagation.js';
import { renderHtml, renderText } from './report.js';
import { rpcScenario } from './rpc.js';
import { scaleScenario } from './scale.js';
import { slowBackendScenario } from './slow-backend.js';
import { l4RefreshScenario } from './l4-refresh.js';
import { fleetScenario } from './fleet.js';
import { subsettingScenario } from './subsetting.js';
import type { Scenario, ScenarioResult } from './scenario.js';

const SCENARIOS: Scenario[] = [leasesScenario, rpcScenario, cappedScenario, slowBackendScenario, l4RefreshScenario, multiProcessScenario, discoveryScenario, propagationScenario, scaleScenario, fleetScenario, subsettingScenario];

/** Adds, per row, the ratio of its primary median to the baseline's in the same group. */
function withRatios(result: ScenarioResult) {
  return {
    ...result,
    groups: result.groups.map((group) => {
      const base = result.baseline ? group.rows.find((r) => r.contender === result.baseline)?.values[result.primary]?.median : undefined;
      return {
        ...group,
        rows: group.rows.map((row) => {
          const value = row.values[result.primary]?.median;
          return base === undefined || value === undefined ? row : { ...row, ratioToBaseline: value / base };
        }),
      };
    }),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, tiny: { type: 'boolean' }, json: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(`usage: npm run bench -- [--quick | --tiny] [--json] [--only ${SCENARIOS.map((s) => s.id).join(',')}]\n`);
    return 0;
  }
  const only = values.only?.split(',');
  const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.id).join(', ')}\n`);
    return 2;
  }
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown cpu'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const date = new Date().toISOString();
  const context = { quick: (values.quick ?? false) || (values.tiny ?? false), tiny: values.tiny ?? false, log: (line: string) => process.stderr.write(`[bench] ${line}\n`) };
  const results: ScenarioResult[] = [];
  const startedAt = Date.now();
  for (const scenario of SCENARIOS.filter((s) => only === undefined || only.includes(s.id))) {
    context.log(`${scenario.id}: ${scenario.title}`);
    const t0 = Date.now();
    const result = await scenario.run(context);
    context.log(`${scenario.id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    results.push(result);
    if (!values.json) process.stdout.write(`${renderText(result).join('\n')}\n\n`);
  }
  mkdirSync('bench-report', { recursive: true });
  const report = { machine, date, quick: context.quick, seconds: (Date.now() - startedAt) / 1000, results: results.map(withRatios) };
  writeFileSync('bench-report/results.json', `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync('bench-report/index.html', renderHtml(results, machine, date));
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  const bars = results.flatMap((r) => r.bars);
  process.stderr.write(`[bench] ${bars.filter((b) => b.pass).length} of ${bars.length} bars met in ${report.seconds.toFixed(0)} s; report: bench-report/index.html\n`);
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
