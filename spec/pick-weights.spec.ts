// What a pick weighs besides N, through the AnchorSet with fake anchors and a fake clock:
// peak-ewma avoids a slow backend, keeps shares by N and gives a recovered one its share
// back; slow start ramps a key that comes back (not the fleet's first start); zones keep
// calls local, spill what is missing, panic, and weigh a ramping key by its ramp.
import t from 'tap';
import { AnchorSet, type AnchorSetSettings } from '../lib/anchors/anchor-set.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { fakeAnchors, type FakeAnchor } from './fakes/fake-anchor.js';

type Entries = Record<string, { anchors: number; zone?: string }>;
const desired = (entries: Entries) =>
  new Map<string, DesiredEntry>(Object.entries(entries).map(([key, e], i) => [key, { addr: `10.0.0.${i + 1}:1`, anchors: e.anchors, ...(e.zone !== undefined && { zone: e.zone }) }]));

function rig(settings: Omit<AnchorSetSettings, 'drainTimeoutMillis' | 'clock'>) {
  const fakes = fakeAnchors();
  let now = 1_000_000;
  const changes = { shares: 0 };
  const set = new AnchorSet<FakeAnchor>(
    fakes.factory,
    { state: () => {}, eligible: () => {}, sharesChanged: () => void (changes.shares += 1) },
    { drainTimeoutMillis: 0, clock: () => now, ...settings },
  );
  /** Applies the entries and brings every new anchor READY (but those of the keys in `down`). */
  const apply = (entries: Entries, down: string[] = []) => {
    set.apply(desired(entries));
    for (const anchor of fakes.open()) if (anchor.state === 'IDLE' && !down.includes(anchor.key)) anchor.drive('READY');
  };
  /** Picks n times (each pick released at once) and counts them by key. */
  const share = (n: number) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const anchor = set.pick()!;
      counts[anchor.key] = (counts[anchor.key] ?? 0) + 1;
    }
    return counts;
  };
  const keyDown = (key: string) => fakes.open().filter((a) => a.key === key).forEach((a) => a.drive('TRANSIENT_FAILURE'));
  const keyUp = (key: string) => fakes.open().filter((a) => a.key === key).forEach((a) => a.drive('READY'));
  return { set, fakes, changes, apply, share, keyDown, keyUp, advance: (ms: number) => (now += ms), now: () => now };
}

t.test('peak-ewma: a 50 ms backend among two 5 ms ones gets almost nothing, at any concurrency', async (t) => {
  const { fakes, apply, share, now } = rig({ pick: 'peak-ewma' });
  apply({ fast1: { anchors: 2 }, fast2: { anchors: 2 }, slow: { anchors: 2 } });
  for (const anchor of fakes.open()) anchor.latency.observe(anchor.key === 'slow' ? 50 : 5, now());
  const counts = share(10_000);
  t.equal(counts.slow ?? 0, 0, `slow: ${counts.slow ?? 0} of 10,000 (three are drawn: a faster anchor is always among them)`);
  t.ok(Math.abs(counts.fast1! - counts.fast2!) < 600, `the fast two split evenly: ${counts.fast1} / ${counts.fast2}`);
});

t.test('peak-ewma: one key with many anchors compares them with each other (no other key to draw)', async (t) => {
  const { set, fakes, apply, now } = rig({ pick: 'peak-ewma' });
  apply({ only: { anchors: 4 } });
  const [slow] = fakes.open() as [FakeAnchor];
  for (const anchor of fakes.open()) anchor.latency.observe(anchor === slow ? 50 : 5, now());
  let onSlow = 0;
  for (let i = 0; i < 4000; i++) if (set.pick() === slow) onSlow += 1;
  t.equal(onSlow, 0, 'its slow anchor loses every draw against the others');
});

t.test('peak-ewma: with even latencies each key keeps its share by N, exact ties or noisy ones', async (t) => {
  const { fakes, apply, share, now } = rig({ pick: 'peak-ewma' });
  apply({ a: { anchors: 3 }, b: { anchors: 1 } });
  for (const anchor of fakes.open()) anchor.latency.observe(5, now());
  const counts = share(20_000);
  t.ok(Math.abs(counts.a! / 20_000 - 0.75) < 0.02, `exact ties: a took ${((counts.a! / 20_000) * 100).toFixed(1)}% (its N is 3 of 4)`);
  // Latencies that differ by noise, as real ones do: every anchor measures 5 ± 1 ms between picks.
  const noisy = rig({ pick: 'peak-ewma' });
  noisy.apply({ a: { anchors: 3 }, b: { anchors: 1 } });
  const byKey: Record<string, number> = {};
  for (let i = 0; i < 20_000; i++) {
    noisy.advance(10);
    for (const anchor of noisy.fakes.open()) anchor.latency.observe(4 + 2 * Math.random(), noisy.now());
    const key = noisy.set.pick()!.key;
    byKey[key] = (byKey[key] ?? 0) + 1;
  }
  t.ok(Math.abs(byKey.a! / 20_000 - 0.75) < 0.03, `noisy: a took ${((byKey.a! / 20_000) * 100).toFixed(1)}% (its N is 3 of 4)`);
});

t.test('peak-ewma: calls in flight count (latency × (streams + 1)); a new anchor is tried once, then measured', async (t) => {
  const { set, fakes, apply, now } = rig({ pick: 'peak-ewma' });
  apply({ a: { anchors: 1 }, b: { anchors: 1 } });
  const [a, b] = fakes.open() as [FakeAnchor, FakeAnchor];
  a.latency.observe(5, now());
  b.latency.observe(12, now());
  for (let i = 0; i < 2; i++) a.take(); // a: 5 × 3 = 15 > b: 12 × 1
  t.equal(set.pick(), b, 'a busy fast anchor costs more than an idle slower one');
  const { set: fresh, fakes: freshFakes, apply: applyFresh, now: freshNow } = rig({ pick: 'peak-ewma' });
  applyFresh({ known: { anchors: 1 }, new: { anchors: 1 } });
  const [known, unmeasured] = freshFakes.open() as [FakeAnchor, FakeAnchor];
  known.latency.observe(5, freshNow());
  t.equal(fresh.pick(), unmeasured, 'an unmeasured idle anchor is tried');
  unmeasured.take();
  t.equal(fresh.pick(), known, 'while its first call runs it waits for that call to speak');
});

t.test('peak-ewma: a backend that was slow and recovered is drawn again once its estimate has decayed, and wins its share back', async (t) => {
  const { fakes, apply, share, advance, now } = rig({ pick: 'peak-ewma' });
  apply({ a: { anchors: 1 }, b: { anchors: 1 } });
  const [a, b] = fakes.open() as [FakeAnchor, FakeAnchor];
  a.latency.observe(5, now());
  b.latency.observe(50, now());
  t.same(share(100), { a: 100 }, 'b, slow, gets nothing');
  // a keeps answering in 5 ms; b gets no call, so its estimate decays towards 0.
  for (let second = 0; second < 30; second++) {
    advance(1000);
    a.latency.observe(5, now());
  }
  const counts = share(100);
  t.ok((counts.b ?? 0) > 0, `after 30 s b is drawn again (${counts.b ?? 0} of 100 before its next call is measured)`);
  b.latency.observe(5, now()); // it answers fast now
  for (let i = 0; i < 50; i++) {
    advance(20);
    a.latency.observe(5, now());
    b.latency.observe(5, now());
  }
  const back = share(10_000);
  t.ok(Math.abs(back.a! - back.b!) < 600, `recovered: ${back.a} / ${back.b}`);
});

t.test('slow start: a key that comes back ramps from 10% of its share to all of it over the window (round robin, in turn)', async (t) => {
  const { set, apply, share, keyDown, keyUp, advance } = rig({ slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 } });
  apply({ a: { anchors: 1 }, b: { anchors: 1 } });
  t.same(share(100), { a: 50, b: 50 }, 'keys of the first resolution do not ramp');
  keyDown('b');
  keyUp('b');
  const at = (label: string, expected: number) => {
    const counts = share(1000);
    const shareOfB = counts.b! / counts.a!; // b's picks per pick of a: its factor
    t.ok(Math.abs(shareOfB - expected) < 0.02, `${label}: b gets ${shareOfB.toFixed(3)} of a's picks, expected ${expected}`);
  };
  at('at once', 0.1);
  t.same(set.slowStartRamps().map((r) => r.key), ['b'], 'b is ramping');
  advance(5000);
  at('half way', 0.5);
  advance(5000);
  at('the window over', 1);
  t.same(set.slowStartRamps(), [], 'nothing ramps any more');
});

t.test('slow start works with the two-choice picks too, and a new key ramps', async (t) => {
  for (const pick of ['least-loaded', 'peak-ewma'] as const) {
    const { apply, share, advance } = rig({ pick, slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 } });
    apply({ a: { anchors: 1 }, b: { anchors: 1 } });
    apply({ a: { anchors: 1 }, b: { anchors: 1 }, c: { anchors: 1 } });
    advance(2000);
    const counts = share(30_000);
    const ratio = (counts.c ?? 0) / counts.a!;
    // Cold c passes its draws 20% of the time: it is picked far less than a warm key.
    t.ok(ratio > 0.05 && ratio < 0.45, `${pick}: new key c at 20% of the window gets ${ratio.toFixed(2)} of a's picks`);
  }
});

t.test('zones: calls stay local while the zone serves, spill what it misses, and all leave when it is down', async (t) => {
  const { set, apply, share, keyDown, keyUp } = rig({ zone: { local: 'a', spillBelowPercent: 100, panicBelowPercent: 50 } });
  apply({
    a1: { anchors: 2, zone: 'a' },
    a2: { anchors: 2, zone: 'a' },
    b1: { anchors: 2, zone: 'b' },
    b2: { anchors: 2, zone: 'b' },
    c1: { anchors: 2, zone: 'c' },
    c2: { anchors: 2, zone: 'c' },
  });
  const byZone = (n: number) => {
    const counts = share(n);
    const zones: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (const [key, count] of Object.entries(counts)) zones[key[0]!]! += count / n;
    return zones;
  };
  t.same(byZone(1000), { a: 1, b: 0, c: 0 }, 'both of a serve: everything in a');
  t.equal(set.zoneReport()?.mode, 'local');
  keyDown('a2');
  const spill = byZone(20_000);
  t.ok(Math.abs(spill.a! - 0.5) < 0.02 && Math.abs(spill.b! - 0.25) < 0.02 && Math.abs(spill.c! - 0.25) < 0.02, `one of a down: a ${spill.a}, b ${spill.b}, c ${spill.c}`);
  t.match(set.zoneReport(), { local: 'a', mode: 'spill', zones: [{ zone: 'a', total: 4, healthy: 2, share: 0.5 }, { zone: 'b', share: 0.25 }, { zone: 'c', share: 0.25 }] });
  keyDown('a1');
  t.same(byZone(1000).a, 0, 'both of a down: nothing in a');
  keyUp('a1');
  keyUp('a2');
  t.same(byZone(1000), { a: 1, b: 0, c: 0 }, 'back: everything in a again');
});

t.test('zones: keys without a zone count as local; a zone-less caller ignores zones', async (t) => {
  const { apply, share } = rig({ zone: { local: 'a', spillBelowPercent: 100, panicBelowPercent: 50 } });
  apply({ any: { anchors: 1 }, a1: { anchors: 1, zone: 'a' }, b1: { anchors: 1, zone: 'b' } });
  const counts = share(1000);
  t.same(counts, { any: 500, a1: 500 }, 'the key without a zone shares the local zone\'s calls');
  const plain = rig({});
  plain.apply({ a1: { anchors: 1, zone: 'a' }, b1: { anchors: 1, zone: 'b' } });
  t.same(plain.share(100), { a1: 50, b1: 50 }, 'no zone of its own: round robin over every key');
  t.equal(plain.set.zoneReport(), undefined);
});

t.test('zones: a key whose value moves it to another zone is scheduled there at once', async (t) => {
  const { apply, share, set } = rig({ zone: { local: 'a', spillBelowPercent: 100, panicBelowPercent: 50 } });
  apply({ k1: { anchors: 1, zone: 'a' }, k2: { anchors: 1, zone: 'b' } });
  t.same(share(10), { k1: 10 });
  set.apply(desired({ k1: { anchors: 1, zone: 'b' }, k2: { anchors: 1, zone: 'a' } }));
  t.same(share(10), { k2: 10 }, 'the zones swapped: k2 is local now');
});

t.test('slow start: a key of the first entries ramps if it comes up later than one window after them, or comes back', async (t) => {
  const { set, apply, keyUp, advance } = rig({ slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 } });
  apply({ a: { anchors: 1 }, late: { anchors: 1 } }, ['late']);
  t.same(set.slowStartRamps(), [], 'a, up with the fleet, does not ramp');
  advance(20_000);
  keyUp('late');
  t.same(set.slowStartRamps().map((r) => r.key), ['late'], 'late came up 20 s after the first entries: a cold process, it ramps');
  const second = rig({ slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 } });
  second.apply({ a: { anchors: 1 }, b: { anchors: 1 } });
  second.advance(1000);
  second.keyDown('b');
  second.keyUp('b');
  t.same(second.set.slowStartRamps().map((r) => r.key), ['b'], 'b restarted a second after the fleet came up: it ramps');
});

t.test('slow start: the first non-empty entries are the fleet (an empty first resolution does not count)', async (t) => {
  const { set, apply } = rig({ slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 } });
  apply({});
  apply({ a: { anchors: 1 }, b: { anchors: 1 } });
  t.same(set.slowStartRamps(), [], 'no ramp for the fleet of the first real entries');
});

t.test('slow start: a longer window set while a key ramps stretches its ramp', async (t) => {
  const { set, apply, keyDown, keyUp, advance } = rig({ slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 } });
  apply({ a: { anchors: 1 }, b: { anchors: 1 } });
  keyDown('b');
  keyUp('b');
  advance(5000);
  set.setSlowStart({ windowMillis: 40_000, aggression: 1, minWeightPercent: 10 });
  advance(6000);
  t.match(set.slowStartRamps(), [{ key: 'b', factor: 11_000 / 40_000 }], '11 s into a 40 s window: still ramping');
});

t.test('zones and slow start: a zone whose only key comes back ramps its zone share too', async (t) => {
  const { set, apply, share, keyDown, keyUp, advance, changes } = rig({
    zone: { local: 'a', spillBelowPercent: 100, panicBelowPercent: 50 },
    slowStart: { windowMillis: 10_000, aggression: 1, minWeightPercent: 10 },
  });
  apply({ a1: { anchors: 1, zone: 'a' }, b1: { anchors: 1, zone: 'b' } });
  t.same(share(100), { a1: 100 });
  const before = changes.shares;
  keyDown('a1');
  t.ok(changes.shares > before, 'the owner hears that the shares changed (waiters can go to zone b now)');
  t.same(share(100), { b1: 100 }, 'a1 down: everything in b');
  keyUp('a1');
  const atOnce = share(10_000);
  t.ok(atOnce.a1! / 10_000 < 0.12, `a1 back and cold: zone a gets ${((atOnce.a1! / 10_000) * 100).toFixed(1)}% (10% of its weight: panic spreads by weight)`);
  advance(5000);
  const half = share(10_000);
  t.ok(Math.abs(half.a1! / 10_000 - 0.5) < 0.03, `half way: zone a keeps ${((half.a1! / 10_000) * 100).toFixed(1)}%`);
  advance(5000);
  t.same(share(1000), { a1: 1000 }, 'the window over: everything in zone a again');
  t.equal(set.zoneReport()?.mode, 'local');
});
