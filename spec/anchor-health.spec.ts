// Health gating in the shared Anchor (both paths): with health checks on, an anchor takes
// leases only while READY and SERVING (or UNCHECKED: no health service), a new
// connection starts UNKNOWN again, and one of its maxLeases slots is the health stream's.
import t from 'tap';
import type { AnchorHealth, AnchorListener } from '../lib/anchors/anchor.js';
import { FakeAnchor } from './fakes/fake-anchor.js';

function recorded(): { listener: AnchorListener; events: string[] } {
  const events: string[] = [];
  return {
    events,
    listener: {
      state: (_a, state, previous) => events.push(`state ${previous}->${state}`),
      health: (_a, health, previous) => events.push(`health ${previous}->${health}`),
      eligibility: (_a, eligible) => events.push(eligible ? 'eligible' : 'not eligible'),
      closed: () => events.push('closed'),
    },
  };
}

const spec = { key: 'k', index: 0, address: '10.0.0.1:1' };

t.test('without health checks an anchor is UNCHECKED and eligible once READY, with its full capacity', async (t) => {
  const { listener } = recorded();
  const anchor = new FakeAnchor(spec, listener, { maxLeases: 4 });
  anchor.drive('READY');
  t.equal(anchor.health, 'UNCHECKED');
  t.equal(anchor.eligible, true);
  t.equal(anchor.capacity, 4);
});

t.test('with health checks: READY is not enough; SERVING is; NOT_SERVING and SERVICE_UNKNOWN take it out; UNCHECKED counts as healthy', async (t) => {
  const { listener, events } = recorded();
  const anchor = new FakeAnchor(spec, listener, { maxLeases: 4, healthChecked: true });
  t.equal(anchor.health, 'UNKNOWN', 'starts UNKNOWN');
  anchor.drive('READY');
  t.equal(anchor.eligible, false, 'READY but no status yet: no leases');
  const steps: [AnchorHealth, boolean][] = [
    ['SERVING', true],
    ['NOT_SERVING', false],
    ['SERVING', true],
    ['SERVICE_UNKNOWN', false],
    ['UNKNOWN', false],
    ['UNCHECKED', true],
  ];
  for (const [health, eligible] of steps) {
    anchor.driveHealth(health);
    t.equal(anchor.eligible, eligible, `${health}: ${eligible ? 'eligible' : 'out of rotation'}`);
  }
  t.same(
    events,
    [
      'state IDLE->READY',
      'eligible',
      'health UNKNOWN->SERVING',
      'not eligible',
      'health SERVING->NOT_SERVING',
      'eligible',
      'health NOT_SERVING->SERVING',
      'not eligible',
      'health SERVING->SERVICE_UNKNOWN',
      'health SERVICE_UNKNOWN->UNKNOWN',
      'eligible',
      'health UNKNOWN->UNCHECKED',
    ],
    'the exact sequence: eligibility flips before the health event that caused them',
  );
});

t.test('a new connection forgets what the last one said and waits for its first SERVING', async (t) => {
  const { listener, events } = recorded();
  const anchor = new FakeAnchor(spec, listener, { maxLeases: 4, healthChecked: true });
  anchor.drive('READY');
  anchor.driveHealth('SERVING');
  t.equal(anchor.eligible, true);
  events.length = 0;
  anchor.drive('IDLE');
  t.equal(anchor.health, 'UNKNOWN', 'leaving READY resets the health to UNKNOWN');
  t.same(events, ['not eligible', 'health SERVING->UNKNOWN', 'state READY->IDLE'], 'eligibility first (both changes made), then the health, then the state: no listener sees a stale eligibility');
  anchor.driveHealth('SERVING');
  t.equal(anchor.health, 'UNKNOWN', 'a status while not READY (a stale stream) is ignored');
  anchor.drive('READY');
  t.equal(anchor.eligible, false, 'READY again: waits for the first SERVING');
  anchor.driveHealth('SERVING');
  t.equal(anchor.eligible, true);
});

t.test('the health stream takes one of maxLeases: capacity is maxLeases - 1', async (t) => {
  const { listener } = recorded();
  const anchor = new FakeAnchor(spec, listener, { maxLeases: 3, healthChecked: true });
  anchor.drive('READY');
  anchor.driveHealth('SERVING');
  t.equal(anchor.capacity, 2);
  anchor.take();
  t.equal(anchor.eligible, true, '1 of 2');
  anchor.take();
  t.equal(anchor.eligible, false, '2 of 2: full, leaving the third stream to the health check');
  anchor.give();
  t.equal(anchor.eligible, true, 'a slot back');
});

t.test('a closed anchor ignores health reports', async (t) => {
  const { listener, events } = recorded();
  const anchor = new FakeAnchor(spec, listener, { maxLeases: 3, healthChecked: true });
  anchor.drive('READY');
  anchor.close();
  events.length = 0;
  anchor.driveHealth('SERVING');
  t.same(events, [], 'nothing reported after close()');
  t.equal(anchor.eligible, false);
});
