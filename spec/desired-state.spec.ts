import t from 'tap';
import fc from 'fast-check';
import { DesiredState, type EndpointDiff } from '../lib/discovery/desired-state.js';
import type { EndpointEntry } from '../lib/discovery/endpoint-entry.js';

const limits = { defaultAnchors: 1, maxAnchorsPerKey: 64, maxValueBytes: 4096 };
let revision = 0;
const kv = (key: string, value: string) => ({ key, value: Buffer.from(value), modRevision: ++revision });
const summary = (diff: EndpointDiff | null) =>
  diff && {
    added: diff.added.map((e) => `${e.key}=${e.addr}#${e.anchors}`),
    updated: diff.updated.map((u) => `${u.after.key}=${u.after.addr}#${u.after.anchors}`),
    removed: diff.removed.map((e) => e.key),
  };

t.test('puts and deletes produce added, updated and removed', async (t) => {
  const state = new DesiredState(limits);
  state.put(kv('a', 'h:1#2'));
  state.put(kv('b', 'h:2'));
  t.same(summary(state.takeDiff()), { added: ['a=h:1#2', 'b=h:2#1'], updated: [], removed: [] });
  state.put(kv('a', 'h:1#3'));
  state.delete('b');
  t.same(summary(state.takeDiff()), { added: [], updated: ['a=h:1#3'], removed: ['b'] });
  t.equal(state.takeDiff(), null, 'nothing pending after a take');
});

t.test('a burst is coalesced per key', async (t) => {
  const state = new DesiredState(limits);
  state.put(kv('a', 'h:1'));
  state.takeDiff();
  state.put(kv('a', 'h:1#5'));
  state.put(kv('a', 'h:1')); // back to where it was
  state.put(kv('n', 'h:9'));
  state.delete('n'); // added and removed within the batch
  t.equal(state.takeDiff(), null, 'no net change, no diff');
});

t.test('an invalid value keeps the last valid one (fail-static)', async (t) => {
  const state = new DesiredState(limits);
  state.put(kv('a', 'h:1#2'));
  state.takeDiff();
  const record = state.put(kv('a', '{"addr":"h:1","anchors":0}'));
  t.match(record, { key: 'a', keptPrevious: true, reason: /anchors/ });
  t.equal(state.endpoints.get('a')?.anchors, 2, 'still serving the last valid value');
  t.ok(state.invalid.has('a'), 'the key shows as invalid');
  t.equal(state.takeDiff(), null, 'no diff for an invalid value');
  state.put(kv('a', 'h:1#4'));
  t.notOk(state.invalid.has('a'), 'a valid value clears the invalid mark');
  t.same(summary(state.takeDiff())?.updated, ['a=h:1#4']);
});

t.test('an invalid new key is not added; deleting it clears the mark', async (t) => {
  const state = new DesiredState(limits);
  t.match(state.put(kv('x', 'garbage')), { keptPrevious: false });
  t.equal(state.endpoints.size, 0);
  t.equal(state.takeDiff(), null);
  state.delete('x');
  t.equal(state.invalid.size, 0);
});

t.test('replace() diffs a full listing against the state', async (t) => {
  const state = new DesiredState(limits);
  const a = kv('a', 'h:1');
  state.put(a);
  state.put(kv('b', 'h:2'));
  state.takeDiff();
  const invalid = state.replace([a, kv('c', 'h:3'), kv('d', 'nope')]);
  t.same(invalid.map((r) => r.key), ['d']);
  t.same(summary(state.takeDiff()), { added: ['c=h:3#1'], updated: [], removed: ['b'] });
  t.same([...state.endpoints.keys()].sort(), ['a', 'c']);
});

t.test('property: applying the coalesced diffs reproduces the state, and invalid values never remove a key', async (t) => {
  const key = fc.constantFrom('k1', 'k2', 'k3', 'k4');
  const value = fc.oneof(
    fc.constantFrom('h:1', 'h:1#2', 'h:2#3', '{"addr":"h:3","anchors":4}'),
    fc.constantFrom('bad', '{"addr":"h:1","anchors":0}', ''),
  );
  const op = fc.oneof(
    fc.record({ type: fc.constant('put' as const), key, value }),
    fc.record({ type: fc.constant('del' as const), key }),
    fc.record({ type: fc.constant('take' as const) }),
    fc.record({ type: fc.constant('replace' as const), keys: fc.uniqueArray(key), value }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const state = new DesiredState(limits);
      const mirror = new Map<string, EndpointEntry>();
      const apply = (diff: EndpointDiff | null) => {
        if (!diff) return;
        for (const e of diff.removed) mirror.delete(e.key);
        for (const e of diff.added) mirror.set(e.key, e);
        for (const u of diff.updated) mirror.set(u.after.key, u.after);
      };
      for (const o of ops) {
        const before = state.endpoints.get('key' in o ? o.key : '');
        if (o.type === 'put') {
          const invalid = state.put(kv(o.key, o.value));
          if (invalid && state.endpoints.get(o.key) !== before) return false;
        } else if (o.type === 'del') state.delete(o.key);
        else if (o.type === 'take') apply(state.takeDiff());
        else state.replace(o.keys.map((k) => kv(k, o.value)));
      }
      apply(state.takeDiff());
      return JSON.stringify([...mirror].sort()) === JSON.stringify([...state.endpoints].sort());
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random sequences agreed');
});
