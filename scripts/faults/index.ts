// npm run test:faults: every fault scenario against real etcd and real backends, one after
// the other. Each prints one result line with its figure, then its bars; the exit code is 1
// when any bar is missed.
//   --short        the shortened profile that `npm test` runs
//   --minutes N    length of the churn soak (default 10)
//   --only a,b     run only these scenario ids
//   --json         print the results as JSON as well
import { parseArgs } from 'node:util';
import type { FaultResult } from './fault.js';
import { SCENARIOS } from './scenarios.js';

function render(result: FaultResult): string {
  const ok = result.checks.every((c) => c.pass);
  const lines = [`${ok ? 'PASS' : 'FAIL'} ${result.id}: ${result.figure}`];
  for (const c of result.checks) lines.push(`  ${c.pass ? '✔' : '✘'} ${c.label} — ${c.detail}`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { short: { type: 'boolean' }, minutes: { type: 'string' }, only: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const ids = SCENARIOS.map((s) => s.id);
  if (values.help) {
    process.stdout.write(`usage: npm run test:faults -- [--short] [--minutes N] [--json] [--only ${ids.join(',')}]\n`);
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
  const context = { short: values.short ?? false, ...(minutes === undefined ? {} : { minutes }), log: (line: string) => process.stderr.write(`[faults] ${line}\n`) };
  const results: FaultResult[] = [];
  const startedAt = Date.now();
  for (const scenario of SCENARIOS.filter((s) => only === undefined || only.includes(s.id))) {
    context.log(`${scenario.id}: ${scenario.title}`);
    const t0 = Date.now();
    let result: FaultResult;
    try {
      result = await scenario.run(context);
    } catch (err) {
      // A scenario that throws is a miss with the reason, and the others still run.
      const reason = err instanceof Error ? (err.stack ?? err.message) : String(err);
      result = { id: scenario.id, title: scenario.title, figure: 'scenario failed before producing its figure', settings: {}, checks: [{ label: 'scenario completes', pass: false, detail: reason }] };
    }
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
