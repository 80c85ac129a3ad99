// The fault suite's short profile (`npm run test:faults -- --short`) inside `npm run test:e2e`:
// every scenario of the reliability issue against real etcd members and real backends,
// each in a process of its own as the runner does it, and each bar one assertion. The
// full profile (30 s outage, 10 minute soak) is `npm run test:faults`. The spec runs the
// built runner (it does not import scripts/): `--list` names the scenarios, and
// testkit/fault-process.ts runs each one through the runner's `--child` mode.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runIsolated } from '../../testkit/fault-process.js';

const RUNNER = fileURLToPath(new URL('../../scripts/faults/index.js', import.meta.url));
const scenarios = JSON.parse(execFileSync(process.execPath, [RUNNER, '--list'], { encoding: 'utf8' })) as { id: string; title: string }[];

t.ok(scenarios.length > 0, 'the runner lists its scenarios');
for (const scenario of scenarios) {
  t.test(`${scenario.id}: ${scenario.title}`, async (t) => {
    const result = await runIsolated(RUNNER, scenario.id, scenario.title, { short: true, log: (line) => t.comment(line) });
    t.comment(`${result.id}: ${result.figure}`);
    t.ok(result.checks.length > 0, 'the scenario states its bars');
    for (const c of result.checks) t.ok(c.pass, `${c.label} — ${c.detail}`);
  });
}
