// npm run test:faults: every fault scenario against real etcd and real backends, one after
// the other, each in a process of its own (isolated.ts). Each prints one result line with
// its figure, then its bars; the exit code is 1 when any bar is missed.
//   --short        the shortened profile that `npm run test:e2e` runs
//   --minutes N    length of the churn soak (default 10)
//   --only a,b     run only these scenario ids
//   --json         print the results as JSON as well
//   --child        (internal) run the one --only scenario in this process and print its result
//   --list         (internal) print the scenarios' ids and titles as JSON (spec/e2e/faults.spec.ts)
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RESULT_MARK, runIsolated } from '../../testkit/fault-process.js';
import type { FaultContext, FaultResult, FaultScenario } from './fault.js';
import { SCENARIOS } from './scenarios.js';

const ENTRY = fileURLToPath(import.meta.url);

function render(result: FaultResult): string {
  const ok = result.checks.every((c) => c.pass);
  const lines = [`${ok ? 'PASS' : 'FAIL'} ${result.id}: ${result.figure}`];
  for (const c of result.checks) lines.push(`  ${c.pass ? '✔' : '✘'} ${c.label} — ${c.detail}`);
  return lines.join('\n');
}

/** A scenario that throws is a miss with the reason. */
async function runHere(scenario: FaultScenario, context: FaultContext): Promise<FaultResult> {
  try {
    return await scenario.run(context);
  } catch (err) {
    const reason = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return { id: scenario.id, title: scenario.title, figure: 'scenario failed before producing its figure', settings: {}, checks: [{ label: 'scenario completes', pass: false, detail: reason }] };
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { child: { type: 'boolean' }, list: { type: 'boolean' }, short: { type: 'boolean' }, minutes: { type: 'string' }, only: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const ids = SCENARIOS.map((s) => s.id);
  if (values.help) {
    process.stdout.write(`usage: npm run test:faults -- [--short] [--minutes N] [--json] [--only ${ids.join(',')}]\n`);
    return 0;
  }
  if (values.list) {
    process.stdout.write(`${JSON.stringify(SCENARIOS.map(({ id, title }) => ({ id, title })))}\n`);
    return 0;
  }
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  if (minutes !== undefined && !(Number.isFinite(minutes) && minutes > 0)) {
    process.stderr.write(`--minutes must be a positive number, got ${JSON.stringify(values.minutes)}\n`);
    return 2;
  }
  const only = values.only?.split(',');
  const unknown = only?.filter((id) => !ids.includes(id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; known: ${ids.join(', ')}\n`);
    return 2;
  }
  if (values.child) {
    const scenario = SCENARIOS.find((s) => s.id === only?.[0]);
    if (scenario === undefined || only?.length !== 1) {
      process.stderr.write('--child needs exactly one --only scenario\n');
      return 2;
    }
    const result = await runHere(scenario, { short: values.short ?? false, ...(minutes === undefined ? {} : { minutes }), log: (line: string) => process.stderr.write(`[faults] ${line}\n`) });
    process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
    // A scenario stops everything it started; if something still holds the process, say what, and go.
    setTimeout(() => {
      process.stderr.write(`[faults] ${scenario.id}: still running 10 s after its result (${process.getActiveResourcesInfo().join(', ')}); exiting\n`);
      process.exit(0);
    }, 10_000).unref();
    return 0;
  }
  const context = { short: values.short ?? false, ...(minutes === undefined ? {} : { minutes }), log: (line: string) => process.stderr.write(`[faults] ${line}\n`) };
  const results: FaultResult[] = [];
  const startedAt = Date.now();
  for (const scenario of SCENARIOS.filter((s) => only === undefined || only.includes(s.id))) {
    context.log(`${scenario.id}: ${scenario.title}`);
    const t0 = Date.now();
    const result = await runIsolated(ENTRY, scenario.id, scenario.title, { short: context.short, ...(minutes === undefined ? {} : { minutes }), log: (line) => process.stderr.write(`${line}\n`) });
    context.log(`${scenario.id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    results.push(result);
    process.stdout.write(`${render(result)}\n`);
  }
  const checks = results.flatMap((r) => r.checks);
  const missed = checks.filter((c) => !c.pass).length;
  if (values.json) process.stdout.write(`${JSON.stringify({ short: context.short, seconds: (Date.now() - startedAt) / 1000, results }, null, 2)}\n`);
  process.stdout.write(`${results.length} scenarios, ${checks.length - missed} of ${checks.length} bars met in ${((Date.now() - startedAt) / 1000).toFixed(0)} s\n`);
  return missed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`faults failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
