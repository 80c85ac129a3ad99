// The fault suite's short profile (`npm run test:faults -- --short`) inside `npm test`:
// every scenario of the reliability issue against real etcd members and real backends,
// each in a process of its own as the runner does it, and each bar one assertion. The
// full profile (30 s outage, 10 minute soak) is `npm run test:faults`.
import t from 'tap';
import { SCENARIOS } from '../scripts/faults/scenarios.js';
import { runIsolated } from '../scripts/faults/isolated.js';

for (const scenario of SCENARIOS) {
  t.test(`${scenario.id}: ${scenario.title}`, async (t) => {
    const result = await runIsolated(scenario.id, scenario.title, { short: true, log: (line) => t.comment(line) });
    t.comment(`${result.id}: ${result.figure}`);
    t.ok(result.checks.length > 0, 'the scenario states its bars');
    for (const c of result.checks) t.ok(c.pass, `${c.label} — ${c.detail}`);
  });
}
