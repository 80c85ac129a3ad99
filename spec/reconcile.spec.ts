import t from 'tap';
import fc from 'fast-check';
import { reconcile, type DesiredEntry, type LiveEntry } from '../lib/anchors/reconcile.js';

const desired = (entries: Record<string, [string, number]>) =>
  new Map<string, DesiredEntry>(Object.entries(entries).map(([k, [addr, anchors]]) => [k, { addr, anchors }]));
const live = (entries: Record<string, [string, number]>) =>
  new Map<string, LiveEntry>(Object.entries(entries).map(([k, [addr, count]]) => [k, { addr, count }]));
const refs = (list: readonly { key: string; index: number }[]) => list.map((r) => `${r.key}#${r.index}`);

t.test('reconcile by (key, index)', async (t) => {
  const cases: [string, ReturnType<typeof desired>, ReturnType<typeof live>, string[], string[]][] = [
    ['a new key creates anchors 0..N-1', desired({ k: ['a:1', 3] }), live({}), ['k#0', 'k#1', 'k#2'], []],
    ['growing 3 → 5 adds 3 and 4, keeps 0-2', desired({ k: ['a:1', 5] }), live({ k: ['a:1', 3] }), ['k#3', 'k#4'], []],
    ['shrinking 5 → 2 drains the highest indexes', desired({ k: ['a:1', 2] }), live({ k: ['a:1', 5] }), [], ['k#4', 'k#3', 'k#2']],
    ['a changed address drains all and recreates', desired({ k: ['b:2', 2] }), live({ k: ['a:1', 2] }), ['k#0', 'k#1'], ['k#1', 'k#0']],
    ['a deleted key drains all', desired({}), live({ k: ['a:1', 2] }), [], ['k#1', 'k#0']],
    ['no change, no work', desired({ k: ['a:1', 2], j: ['b:1', 1] }), live({ k: ['a:1', 2], j: ['b:1', 1] }), [], []],
    ['two keys with the same address are independent', desired({ x: ['a:1', 1], y: ['a:1', 2] }), live({ x: ['a:1', 1] }), ['y#0', 'y#1'], []],
  ];
  for (const [name, want, have, create, drain] of cases) {
    const plan = reconcile(want, have);
    t.same(refs(plan.create), create, `${name}: create`);
    t.same(refs(plan.drain), drain, `${name}: drain`);
  }
});

t.test('property: applying the plan yields exactly the desired anchors, and survivors are untouched', async (t) => {
  const entry = fc.tuple(fc.constantFrom('a:1', 'b:2'), fc.integer({ min: 1, max: 6 }));
  const state = fc.dictionary(fc.constantFrom('k1', 'k2', 'k3', 'k4'), entry);
  fc.assert(
    fc.property(state, state, (wantRaw, haveRaw) => {
      const want = desired(wantRaw);
      const have = live(haveRaw);
      const anchors = new Map<string, string>(); // slot -> addr
      for (const [k, e] of have) for (let i = 0; i < e.count; i++) anchors.set(`${k}#${i}`, e.addr);
      const before = new Map(anchors);
      const plan = reconcile(want, have);
      for (const d of plan.drain) if (!anchors.delete(`${d.key}#${d.index}`)) return false;
      for (const c of plan.create) {
        if (anchors.has(`${c.key}#${c.index}`)) return false;
        anchors.set(`${c.key}#${c.index}`, c.addr);
      }
      const expected = new Map<string, string>();
      for (const [k, e] of want) for (let i = 0; i < e.anchors; i++) expected.set(`${k}#${i}`, e.addr);
      if (JSON.stringify([...anchors].sort()) !== JSON.stringify([...expected].sort())) return false;
      // A slot that exists before and after with the same address was never drained.
      const drained = new Set(plan.drain.map((d) => `${d.key}#${d.index}`));
      for (const [slot, addr] of before) if (expected.get(slot) === addr && drained.has(slot)) return false;
      return true;
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random transitions');
});
