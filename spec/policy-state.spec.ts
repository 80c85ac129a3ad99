// The channel state rule of anchored_round_robin (lib/native/policy-state.ts), table-driven.
import t from 'tap';
import { policyStateOf, type AnchorCensus } from '../lib/native/policy-state.js';

const none = { UNCHECKED: 0, UNKNOWN: 0, SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 };
const census = (c: Partial<AnchorCensus>): AnchorCensus => ({ eligibleSlots: 0, full: 0, connecting: 0, ejected: 0, ...c, health: { ...none, ...c.health } });

const cases: [string, Partial<AnchorCensus>, string | RegExp][] = [
  ['an anchor can take a call', { eligibleSlots: 1, connecting: 3 }, 'READY'],
  ['every READY anchor is at its cap: calls wait for a place', { full: 2, health: { ...none, SERVING: 2 } }, 'READY'],
  ['one connecting for the first time', { connecting: 1 }, 'CONNECTING'],
  ['READY but waiting for its first health status (A17)', { health: { ...none, UNKNOWN: 1 } }, 'CONNECTING'],
  ['NOT_SERVING', { health: { ...none, NOT_SERVING: 2 } }, /no healthy backend: 2 connected anchor\(s\) report NOT_SERVING$/],
  ['NOT_SERVING and SERVICE_UNKNOWN', { health: { ...none, NOT_SERVING: 1, SERVICE_UNKNOWN: 1 } }, /report NOT_SERVING or SERVICE_UNKNOWN$/],
  ['every connected backend ejected', { ejected: 2, health: { ...none, UNCHECKED: 2 } }, /every connected backend is ejected by outlier detection \(2 anchor\(s\)\)/],
  ['ejected and unhealthy: health is named', { ejected: 1, health: { ...none, NOT_SERVING: 1 } }, /no healthy backend/],
  ['nothing connected', {}, /no connection established; last error: refused$/],
];

for (const [what, given, expected] of cases) {
  t.test(what, async (t) => {
    const state = policyStateOf(census(given), 'arr', 'refused');
    if (typeof expected === 'string') t.same(state, { state: expected });
    else {
      t.equal(state.state, 'TRANSIENT_FAILURE');
      t.match(state.state === 'TRANSIENT_FAILURE' ? state.details : '', expected);
    }
  });
}

t.test('without a last error the reason says only what is missing', async (t) => {
  t.same(policyStateOf(census({}), 'arr', null), { state: 'TRANSIENT_FAILURE', details: 'arr: no connection established' });
});
