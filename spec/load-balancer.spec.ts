// The anchored_round_robin policy through grpc-js's LoadBalancer interface only, with a
// fake ChannelControlHelper and fake subchannels whose states the test drives: the exact
// sequence of states and pickers reported, the subchannels made and released, and
// re-resolution, as grpc-js tests its own policies. (spec/grpc-resolver.spec.ts runs the
// policy inside real grpc-js channels against real backends.)
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Metadata, connectivityState as State, status as Status } from '@grpc/grpc-js';
import { ANCHOR_ARG } from '../lib/anchors/anchor.js';
import { QueuePicker, UnavailablePicker, statusOrFromError, statusOrFromValue, type Endpoint, type LoadBalancer } from '../lib/grpc-js/experimental.js';
import { AnchoredRoundRobin } from '../lib/native/anchored-round-robin.js';
import { AnchoredRoundRobinConfig } from '../lib/native/policy-config.js';
import { ENTRIES_ATTRIBUTE, type ResolvedEntry } from '../lib/native/resolver.js';
import { FakeHelper, pickOnce, picks, pickStatus } from './fakes/fake-grpc.js';

const config = new AnchoredRoundRobinConfig();

function entry(key: string, addr: string, anchors: number): ResolvedEntry {
  const [host, port] = addr.split(':') as [string, string];
  return { key, addr, anchors, address: { host, port: Number(port) } };
}

/** What our resolver reports for `entries`: N endpoints per entry, plus the entries in the attribute. */
function resolve(lb: LoadBalancer, ...entries: ResolvedEntry[]): void {
  const endpoints: Endpoint[] = entries.flatMap((e) => Array.from({ length: e.anchors }, () => ({ addresses: [e.address] })));
  if (!lb.updateAddressList(statusOrFromValue(endpoints), config, { [ENTRIES_ATTRIBUTE]: entries }, '')) throw new Error('updateAddressList refused the config');
}

function failure(details: string) {
  return statusOrFromError<Endpoint[]>({ code: Status.UNAVAILABLE, details, metadata: new Metadata() });
}

function policy(t: Test): { helper: FakeHelper; lb: LoadBalancer } {
  const helper = new FakeHelper();
  const lb: LoadBalancer = new AnchoredRoundRobin(helper);
  t.teardown(() => lb.destroy());
  return { helper, lb };
}

t.test('N subchannels per entry, each with a distinct anchor arg, ref\'d and told to connect', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 3), entry('svc/b', '10.0.0.2:1', 1));
  t.same(
    helper.subchannels.map((s) => s.anchor),
    ['svc/a#0', 'svc/a#1', 'svc/a#2', 'svc/b#0'],
    'one subchannel per anchor, in (key, index) order',
  );
  t.equal(new Set(helper.subchannels.map((s) => s.args[ANCHOR_ARG])).size, 4, 'the anchor args are distinct');
  t.same(
    helper.subchannels.map((s) => s.getAddress()),
    ['10.0.0.1:1', '10.0.0.1:1', '10.0.0.1:1', '10.0.0.2:1'],
    'each connects to its entry\'s address',
  );
  for (const s of helper.subchannels) {
    t.same(s.log, ['ref', 'startConnecting'], `${s.anchor}: ref'd, then an IDLE subchannel is told to connect`);
    t.equal(s.listeners.size, 1, `${s.anchor}: one state listener`);
  }
  t.equal(lb.getTypeName(), 'anchored_round_robin');
  t.notOk(lb.updateAddressList(statusOrFromValue<Endpoint[]>([]), { getLoadBalancerName: () => 'round_robin', toJsonObject: () => ({}) }, {}, ''), 'another policy\'s config is refused');
});

t.test('the exact sequence of states: CONNECTING (queue) → READY → CONNECTING → TRANSIENT_FAILURE with the error', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2));
  t.same(helper.take(), ['CONNECTING'], 'CONNECTING as soon as the subchannels exist');
  t.type(helper.last.picker, QueuePicker, 'with a queue picker');
  t.equal(helper.last.error, null);
  const [s0, s1] = helper.subchannels as [NonNullable<(typeof helper.subchannels)[0]>, NonNullable<(typeof helper.subchannels)[0]>];

  s0.setState(State.CONNECTING);
  s1.setState(State.CONNECTING);
  t.same(helper.take(), ['CONNECTING', 'CONNECTING'], 'still CONNECTING while both connect');
  t.equal(pickOnce(helper.last.picker), 'QUEUE', 'a CONNECTING picker queues');

  s1.setState(State.READY);
  t.same(helper.take(), ['READY'], 'READY once one subchannel is READY');
  t.equal(helper.last.error, null);
  t.same(picks(helper.last.picker, 3), ['svc/a#1', 'svc/a#1', 'svc/a#1'], 'the READY picker picks only the READY subchannel');

  s0.setState(State.TRANSIENT_FAILURE, 'connect ECONNREFUSED 10.0.0.1:1');
  t.same(helper.take(), ['READY'], 'a failure of a subchannel that was not READY changes nothing but is reported (still READY)');

  s1.setState(State.IDLE);
  t.same(helper.take(), ['reresolve', 'CONNECTING'], 'the READY one leaving READY asks for re-resolution, then CONNECTING');
  t.equal(s1.count('startConnecting'), 2, 'the subchannel that went IDLE is reconnected');
  s1.setState(State.CONNECTING);
  s1.setState(State.TRANSIENT_FAILURE, 'connect ECONNREFUSED 10.0.0.1:1');
  t.same(helper.take(), ['CONNECTING', 'TRANSIENT_FAILURE'], 'TRANSIENT_FAILURE once no subchannel is READY or connecting');
  t.type(helper.last.picker, UnavailablePicker, 'with a failing picker');
  t.equal(pickOnce(helper.last.picker), 'TRANSIENT_FAILURE');
  t.match(helper.last.error, /^anchored_round_robin: /, 'the error names the policy');
  // grpc-js round_robin reports "No connection established. Last error: <the subchannel's error>".
  t.match(helper.last.error, /ECONNREFUSED/, 'the error carries the subchannels\' last error');
  t.match(pickStatus(helper.last.picker), /ECONNREFUSED/, 'and so does the status of a failed pick');

  s0.setState(State.IDLE);
  t.same(helper.take(), ['TRANSIENT_FAILURE'], 'a failed subchannel back in IDLE after its backoff is reconnected, but the policy stays in TRANSIENT_FAILURE (sticky, as round_robin\'s children): calls keep failing fast');
  t.equal(s0.count('startConnecting'), 2);
  s0.setState(State.CONNECTING);
  t.same(helper.take(), ['TRANSIENT_FAILURE'], 'still TRANSIENT_FAILURE while it tries again');
  s0.setState(State.READY);
  t.same(helper.take(), ['READY'], 'READY only once a subchannel is READY again');
  t.equal(helper.reresolutions, 1, 're-resolution only when a subchannel left READY');
});

t.test('the READY picker follows the interleaved schedule over READY subchannels only', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2), entry('svc/b', '10.0.0.2:1', 1));
  for (const s of helper.subchannels) s.setState(State.READY);
  t.equal(helper.last.state, State.READY);
  t.same(picks(helper.last.picker, 6), ['svc/a#0', 'svc/b#0', 'svc/a#1', 'svc/a#0', 'svc/b#0', 'svc/a#1'], 'a(2), b(1): a b a a b a');

  const b0 = helper.live('svc/b#0');
  b0.setState(State.IDLE);
  t.equal(helper.last.state, State.READY, 'still READY with a');
  t.same(picks(helper.last.picker, 2), ['QUEUE', 'QUEUE'], 'a connection went away: picks queue until the I/O already received is read');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(picks(helper.last.picker, 4), ['svc/a#0', 'svc/a#1', 'svc/a#0', 'svc/a#1'], 'then b is skipped while not READY');

  const a1 = helper.live('svc/a#1');
  a1.setState(State.IDLE);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(picks(helper.last.picker, 3), ['svc/a#0', 'svc/a#0', 'svc/a#0'], 'only a#0 is left');

  b0.setState(State.CONNECTING);
  b0.setState(State.READY);
  a1.setState(State.CONNECTING);
  a1.setState(State.READY);
  const all = picks(helper.last.picker, 6);
  t.same(
    all.toSorted(),
    ['svc/a#0', 'svc/a#0', 'svc/a#1', 'svc/a#1', 'svc/b#0', 'svc/b#0'],
    'all READY again: each anchor once per cycle',
  );
  t.ok(all.every((pick, i) => i === 0 || pick !== all[i - 1]), 'never the same subchannel twice in a row');
  t.equal(helper.reresolutions, 2, 'one re-resolution per subchannel that left READY');
});

t.test('re-resolution is requested when a subchannel leaves READY, and not otherwise', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2));
  const [s0, s1] = [helper.live('svc/a#0'), helper.live('svc/a#1')];
  s0.setState(State.CONNECTING);
  s0.setState(State.TRANSIENT_FAILURE, 'refused');
  s0.setState(State.IDLE);
  s0.setState(State.CONNECTING);
  s0.setState(State.READY);
  s1.setState(State.CONNECTING);
  s1.setState(State.READY);
  t.equal(helper.reresolutions, 0, 'connecting, failing before READY and becoming READY ask for nothing');
  s0.setState(State.TRANSIENT_FAILURE, 'reset');
  t.equal(helper.reresolutions, 1, 'READY → TRANSIENT_FAILURE asks once');
  s1.setState(State.IDLE);
  t.equal(helper.reresolutions, 2, 'READY → IDLE asks once');
  s1.setState(State.CONNECTING);
  s1.setState(State.READY);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 1));
  t.equal(helper.reresolutions, 2, 'a READY subchannel removed by the resolver asks for nothing');
  lb.destroy();
  t.equal(helper.reresolutions, 2, 'destroy() asks for nothing');
});

t.test('an IDLE subchannel is reconnected; exitIdle() connects the IDLE ones only', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 3));
  const [s0, s1, s2] = [helper.live('svc/a#0'), helper.live('svc/a#1'), helper.live('svc/a#2')];
  s1.setState(State.CONNECTING);
  s2.setState(State.CONNECTING);
  s2.setState(State.READY);
  t.same([s0, s1, s2].map((s) => s.count('startConnecting')), [1, 1, 1], 'each told to connect once at start');
  lb.exitIdle();
  t.same([s0, s1, s2].map((s) => s.count('startConnecting')), [2, 1, 1], 'exitIdle() connects the one still IDLE');
  s2.setState(State.IDLE);
  t.equal(s2.count('startConnecting'), 2, 'a READY subchannel that drops to IDLE is reconnected at once');
});

t.test('N 3 → 5 keeps the first 3 subchannels and creates 2; N 5 → 2 unrefs the top 3', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 3));
  const first = [...helper.subchannels];
  for (const s of first) s.setState(State.READY);
  helper.take();

  resolve(lb, entry('svc/a', '10.0.0.1:1', 5));
  t.equal(helper.subchannels.length, 5, '2 subchannels created');
  t.same(helper.subchannels.slice(3).map((s) => s.anchor), ['svc/a#3', 'svc/a#4']);
  for (const s of first) t.same(s.log, ['ref', 'startConnecting'], `${s.anchor} kept: not unref'd, not reconnected`);
  t.same(helper.take(), ['READY'], 'still READY');
  t.same(picks(helper.last.picker, 3).toSorted(), ['svc/a#0', 'svc/a#1', 'svc/a#2'], 'the new ones are not picked before READY');
  for (const s of helper.subchannels.slice(3)) s.setState(State.READY);
  t.same(picks(helper.last.picker, 5).toSorted(), ['svc/a#0', 'svc/a#1', 'svc/a#2', 'svc/a#3', 'svc/a#4'], 'all five once READY');

  const all = [...helper.subchannels];
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2));
  t.equal(helper.subchannels.length, 5, 'nothing created');
  t.same(all.map((s) => s.refs), [1, 1, 0, 0, 0], 'the top 3 are unref\'d');
  t.same(all.map((s) => s.listeners.size), [1, 1, 0, 0, 0], 'and their listeners removed');
  t.same(picks(helper.last.picker, 4).toSorted(), ['svc/a#0', 'svc/a#0', 'svc/a#1', 'svc/a#1'], 'only the kept two are picked, each once per cycle');
  t.equal(helper.reresolutions, 0, 'shrinking asks for no re-resolution');
});

t.test('a changed address replaces all of its subchannels; a deleted key unrefs its subchannels', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2), entry('svc/b', '10.0.0.2:1', 1));
  const before = [...helper.subchannels];
  for (const s of before) s.setState(State.READY);
  helper.take();

  resolve(lb, entry('svc/a', '10.0.0.9:1', 2), entry('svc/b', '10.0.0.2:1', 1));
  const [a0, a1, b0] = before as [(typeof before)[0], (typeof before)[0], (typeof before)[0]];
  t.same([a0!.refs, a1!.refs, b0!.refs], [0, 0, 1], 'both of a\'s old subchannels unref\'d, b kept');
  const fresh = helper.subchannels.slice(3);
  t.same(fresh.map((s) => `${s.anchor}@${s.getAddress()}`), ['svc/a#0@10.0.0.9:1', 'svc/a#1@10.0.0.9:1'], 'two new ones at the new address');
  t.same(picks(helper.last.picker, 3), ['svc/b#0', 'svc/b#0', 'svc/b#0'], 'b serves while the new a subchannels connect');

  resolve(lb, entry('svc/a', '10.0.0.9:1', 2));
  t.equal(b0!.refs, 0, 'the deleted key\'s subchannel is unref\'d');
  t.equal(b0!.listeners.size, 0);
  t.same(helper.take(), ['READY', 'CONNECTING'], 'nothing READY left: CONNECTING');
  t.equal(helper.reresolutions, 0);
});

t.test('an empty entry list from our resolver unrefs everything and reports TRANSIENT_FAILURE', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2));
  for (const s of helper.subchannels) s.setState(State.READY);
  helper.take();
  const details = 'anchorpool: no valid endpoints under etcd:///svc/';
  t.ok(lb.updateAddressList(failure(details), config, { [ENTRIES_ATTRIBUTE]: [] }, details));
  t.same(helper.subchannels.map((s) => s.refs), [0, 0], 'every subchannel unref\'d');
  t.same(helper.subchannels.map((s) => s.listeners.size), [0, 0], 'every listener removed');
  t.equal(helper.last.state, State.TRANSIENT_FAILURE, 'TRANSIENT_FAILURE');
  t.equal(helper.last.error, details, 'with the resolver\'s error');
  t.equal(pickStatus(helper.last.picker), details, 'a pick fails with it');
  t.equal(helper.reresolutions, 0);
});

t.test('a failed resolution keeps what works; with nothing yet it reports TRANSIENT_FAILURE', async (t) => {
  const { helper, lb } = policy(t);
  t.ok(lb.updateAddressList(failure('etcd unavailable'), config, {}, ''));
  t.same(helper.take(), ['TRANSIENT_FAILURE'], 'no subchannels yet: TRANSIENT_FAILURE');
  t.equal(helper.last.error, 'etcd unavailable');

  resolve(lb, entry('svc/a', '10.0.0.1:1', 2));
  for (const s of helper.subchannels) s.setState(State.READY);
  helper.take();
  const picker = helper.last.picker;
  t.ok(lb.updateAddressList(failure('etcd unavailable'), config, {}, ''));
  t.same(helper.take(), [], 'nothing reported');
  t.same(helper.subchannels.map((s) => s.refs), [1, 1], 'no subchannel released');
  t.same(picks(picker, 2), ['svc/a#0', 'svc/a#1'], 'the READY picker still picks both');
});

t.test('a replaced subchannel\'s late state change does not change the picker', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 1), entry('svc/b', '10.0.0.2:1', 1));
  for (const s of helper.subchannels) s.setState(State.READY);
  const oldPicker = helper.last.picker;
  const old = helper.live('svc/a#0');
  resolve(lb, entry('svc/a', '10.0.0.9:1', 1), entry('svc/b', '10.0.0.2:1', 1));
  helper.take();
  const replacement = helper.live('svc/a#0');
  t.not(replacement, old, 'a new subchannel holds the slot');

  // grpc-js may deliver a change that was under way when the listener was removed.
  for (const listener of old.everAdded) listener(old, State.READY, State.IDLE, 0, 'late');
  for (const listener of old.everAdded) listener(old, State.IDLE, State.READY, 0);
  old.setState(State.TRANSIENT_FAILURE, 'late');
  t.same(helper.take(), [], 'no state reported, no re-resolution');
  t.same(old.log, ['ref', 'startConnecting', 'unref'], 'the replaced subchannel is not reconnected after its unref');
  t.same(picks(helper.last.picker, 3), ['svc/b#0', 'svc/b#0', 'svc/b#0'], 'the current picker never returns it');
  t.same(picks(oldPicker, 3), ['svc/b#0', 'svc/b#0', 'svc/b#0'], 'nor does a picker handed out before the replacement');

  replacement.setState(State.READY);
  t.same(picks(helper.last.picker, 2).toSorted(), ['svc/a#0', 'svc/b#0']);
  t.equal(helper.last.picker.pick({ metadata: new Metadata(), extraPickInfo: {} }).subchannel === old, false);
});

t.test('destroy() unrefs every subchannel, removes its listeners, and reports nothing after', async (t) => {
  const { helper, lb } = policy(t);
  resolve(lb, entry('svc/a', '10.0.0.1:1', 2), entry('svc/b', '10.0.0.2:1', 1));
  helper.live('svc/a#0').setState(State.READY);
  helper.take();
  const all = [...helper.subchannels];
  lb.destroy();
  t.same(all.map((s) => s.refs), [0, 0, 0], 'every subchannel unref\'d once');
  t.same(all.map((s) => s.count('unref')), [1, 1, 1]);
  t.same(all.map((s) => s.listeners.size), [0, 0, 0], 'no listener left');
  for (const s of all) s.setState(State.IDLE);
  lb.exitIdle();
  t.same(helper.take(), [], 'nothing reported after destroy()');
  t.same(all.map((s) => s.count('startConnecting')), [1, 1, 1], 'and nothing reconnected');
  lb.destroy();
  t.same(all.map((s) => s.count('unref')), [1, 1, 1], 'a second destroy() unrefs nothing more');
});

t.test('without our resolver\'s attribute, duplicated addresses become one entry with N anchors', async (t) => {
  const { helper, lb } = policy(t);
  const a = { host: '10.0.0.1', port: 1 };
  const b = { host: '10.0.0.2', port: 1 };
  const v6 = { host: '::1', port: 7 };
  const endpoints: Endpoint[] = [{ addresses: [a] }, { addresses: [b] }, { addresses: [a] }, { addresses: [v6] }, { addresses: [] }];
  t.ok(lb.updateAddressList(statusOrFromValue<Endpoint[]>(endpoints), config, {}, ''));
  t.same(
    helper.subchannels.map((s) => s.anchor),
    ['10.0.0.1:1#0', '10.0.0.1:1#1', '10.0.0.2:1#0', '[::1]:7#0'],
    'a twice: two anchors of one entry; an endpoint without addresses is skipped',
  );
  for (const s of helper.subchannels) s.setState(State.READY);
  t.same(picks(helper.last.picker, 4), ['10.0.0.1:1#0', '10.0.0.2:1#0', '10.0.0.1:1#1', '[::1]:7#0'], 'interleaved by weight: a b a v6');
  t.ok(lb.updateAddressList(statusOrFromValue<Endpoint[]>([{ addresses: [a] }, { addresses: [b] }]), config, {}, ''));
  t.same(helper.subchannels.map((s) => s.refs), [1, 0, 1, 0], 'a down to one anchor, the IPv6 entry gone');
});

t.test('GRPC_TRACE=anchored_round_robin GRPC_VERBOSITY=DEBUG prints the policy\'s decisions', async (t) => {
  const build = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  // A minimal fake, inline: the trace flag is read once, when grpc-js loads, so this needs a process of its own.
  const script = `
    const { AnchoredRoundRobin } = await import(${build('../lib/native/anchored-round-robin.js')});
    const { AnchoredRoundRobinConfig } = await import(${build('../lib/native/policy-config.js')});
    const { ENTRIES_ATTRIBUTE } = await import(${build('../lib/native/resolver.js')});
    const { statusOrFromValue } = await import(${build('../lib/grpc-js/experimental.js')});
    const listeners = [];
    const subchannel = () => ({
      getConnectivityState: () => 0, startConnecting() {}, ref() {}, unref() {},
      addConnectivityStateListener(l) { listeners.push([this, l]); }, removeConnectivityStateListener() {},
      isHealthy: () => true, addHealthStateWatcher() {}, removeHealthStateWatcher() {},
    });
    const helper = { createSubchannel: subchannel, updateState() {}, requestReresolution() {}, addChannelzChild() {}, removeChannelzChild() {} };
    const lb = new AnchoredRoundRobin(helper);
    const address = { host: '10.0.0.1', port: 1 };
    lb.updateAddressList(statusOrFromValue([{ addresses: [address] }, { addresses: [address] }]), new AnchoredRoundRobinConfig(),
      { [ENTRIES_ATTRIBUTE]: [{ key: 'svc/a', addr: '10.0.0.1:1', anchors: 2, address }] }, '');
    const [s, l] = listeners[0];
    l(s, 0, 2, 0);
    l(s, 2, 0, 0);
    lb.destroy();
  `;
  const run = (env: NodeJS.ProcessEnv) =>
    promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 10_000 });
  const traced = await run({ GRPC_TRACE: 'anchored_round_robin', GRPC_VERBOSITY: 'DEBUG' });
  const lines = traced.stderr.split('\n').filter((line) => line.includes('| anchored_round_robin |'));
  t.match(lines.join('\n'), /1 entries, 2 anchors wanted: created 2, closed 0/, 'the reconcile is traced');
  t.match(lines.join('\n'), /svc\/a#0 \(10\.0\.0\.1:1\): IDLE -> READY/, 'a subchannel\'s state change is traced');
  t.match(lines.join('\n'), /state CONNECTING -> READY/, 'the policy\'s state change is traced');
  t.match(lines.join('\n'), /requesting re-resolution/, 're-resolution is traced');
  t.match(lines.join('\n'), /destroy: closing 2 subchannel/, 'destroy is traced');
  const quiet = await run({ GRPC_TRACE: '', GRPC_VERBOSITY: 'DEBUG' });
  t.notMatch(quiet.stderr, /anchored_round_robin/, 'without the tracer nothing is printed');
});
