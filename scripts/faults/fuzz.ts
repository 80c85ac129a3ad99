// Fault scenario "Fuzzed etcd values": 10,000 generated values (fuzz-values.ts, fixed
// seed) go through a real etcd under a prefix that an etcd source watches — half before
// ready() (the initial listing), half after (live watch events, many of them overwriting
// listed keys) — while a lease pool watches a sub-prefix with its own share of the values.
// The final state is compared with what the value rules call for, key by key:
//   - the process sees no uncaught exception or unhandled rejection; the source and the
//     pool still take a final valid put, and the pool still serves a call;
//   - every key whose last value is valid holds exactly that addr and anchor count; a key
//     whose last value is invalid keeps its last valid value (fail-static) or is absent;
//   - every key whose last value is invalid is listed and was reported with a reason that
//     names the problem; every invalid write was reported once;
//   - a 1 MiB value (and every other value over maxValueBytes) is rejected by its byte
//     count: it reaches the parser as a view into the received gRPC message and is never
//     decoded to a string, on the real path and in a direct call.
import { Etcd3 } from 'etcd3';
import { type AnchorPool, createPool, createSource, DEFAULT_LIMITS, type EndpointSnapshot, type InvalidEndpoint, parseEndpointValue, silentLogger } from '../../lib/index.js';
import { DesiredState, type KeyValue } from '../../lib/internal.js';
import { ensureEtcdInstalled, startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { Backend } from '../../testkit/echo/backend.js';
import { EchoClient, callEcho } from '../../testkit/echo/echo-service.js';
import { check, sleep, type FaultCheck, type FaultScenario } from './fault.js';
import { fuzzValues, type FuzzValue, type Verdict } from './fuzz-values.js';

const SEED = 0x5eed7;
const PREFIX = 'fuzz/';
const POOL_PREFIX = 'fuzz/p/';
/** Share of the values written under the pool's sub-prefix (with loopback-only addresses). */
const POOL_SHARE = 20;
const IN_FLIGHT = 64;
const HUGE_BYTES = 1024 * 1024;
const WAIT_MILLIS = 30_000;
const LIMITS = DEFAULT_LIMITS;

interface Write {
  readonly key: string;
  readonly value: FuzzValue;
}

/** What a value comes to: the generator's verdict, or the parser's for random input. */
type Judged = { ok: true; addr: string; anchors: number } | { ok: false; reason: RegExp | string };

interface ExpectedKey {
  endpoint?: { addr: string; anchors: number };
  invalid?: { reason: RegExp | string; keptPrevious: boolean };
}

const fmt = (n: number): string => n.toLocaleString('en-US');
const pad = (i: number): string => String(i).padStart(5, '0');
const show = (text: string, max = 120): string => JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);

/**
 * Whether dialing `addr` fails (or connects) at once, with no DNS lookup: a unix socket or
 * a loopback IP literal. Not a hostname (a lookup can hang, and the DNS resolver of a closed
 * anchor keeps the process alive for seconds), nor a link-local IPv6 address with a zone
 * (a connect there can hang for minutes).
 */
function isLocalAddress(addr: string): boolean {
  if (addr.startsWith('unix:')) return true;
  const host = addr.slice(0, addr.lastIndexOf(':'));
  return ['[::1]', '[0:0:0:0:0:0:0:1]'].includes(host) || /^\[?(::ffff:)?127\.[0-9]+\.[0-9]+\.[0-9]+\]?$/.test(host);
}

function judge(value: FuzzValue): Judged {
  const verdict: Verdict = value.verdict;
  if (verdict.ok === true) return { ok: true, addr: verdict.addr, anchors: verdict.anchors };
  if (verdict.ok === false) return { ok: false, reason: verdict.reason };
  const parsed = parseEndpointValue('fuzz', value.bytes, LIMITS);
  return parsed.ok ? { ok: true, addr: parsed.endpoint.addr, anchors: parsed.endpoint.anchors } : { ok: false, reason: parsed.reason };
}

const reasonFits = (reason: string, expected: RegExp | string): boolean =>
  reason.length > 0 && (typeof expected === 'string' ? reason === expected : expected.test(reason));

/**
 * Half the values go to fresh keys before the source starts; of the other half, two in
 * five overwrite a listed key and the rest go to fresh keys. No key is written twice in
 * one phase, so the writes of a phase can run in parallel without racing on a key.
 */
function plan(values: readonly FuzzValue[], prefix: string): { first: Write[]; second: Write[] } {
  const half = Math.ceil(values.length / 2);
  const first = values.slice(0, half).map((value, i) => ({ key: `${prefix}k${pad(i)}`, value }));
  const second = values.slice(half).map((value, j) => ({ key: j % 5 < 2 && j < half ? first[j]!.key : `${prefix}k${pad(half + j)}`, value }));
  return { first, second };
}

/** The state the writes call for, applying the fail-static rule key by key. */
function expectedState(writes: readonly Write[], judged: ReadonlyMap<FuzzValue, Judged>): Map<string, ExpectedKey> {
  const state = new Map<string, ExpectedKey>();
  for (const { key, value } of writes) {
    const entry = state.get(key) ?? {};
    const verdict = judged.get(value)!;
    if (verdict.ok) {
      entry.endpoint = { addr: verdict.addr, anchors: verdict.anchors };
      delete entry.invalid;
    } else {
      entry.invalid = { reason: verdict.reason, keptPrevious: entry.endpoint !== undefined };
    }
    state.set(key, entry);
  }
  return state;
}

/** Differences between a snapshot and the expected state, as readable lines (first few kept). */
function compare(snapshot: EndpointSnapshot, expected: ReadonlyMap<string, ExpectedKey>, prefix: string) {
  const problems: string[] = [];
  const invalidProblems: string[] = [];
  let endpoints = 0;
  let exact = 0;
  let invalid = 0;
  let keptPrevious = 0;
  for (const [key, want] of expected) {
    if (!key.startsWith(prefix)) continue;
    const got = snapshot.endpoints.get(key);
    if (want.endpoint) {
      endpoints += 1;
      if (!got) problems.push(`${key}: missing, expected ${want.endpoint.addr}#${want.endpoint.anchors}`);
      else if (got.addr !== want.endpoint.addr || got.anchors !== want.endpoint.anchors) {
        problems.push(`${key}: ${got.addr}#${got.anchors}, expected ${want.endpoint.addr}#${want.endpoint.anchors}`);
      } else exact += 1;
    } else if (got) {
      problems.push(`${key}: present as ${got.addr}#${got.anchors}, but no valid value was ever written`);
    }
    const record = snapshot.invalid.get(key);
    if (want.invalid) {
      invalid += 1;
      if (want.invalid.keptPrevious) keptPrevious += 1;
      if (!record) invalidProblems.push(`${key}: not listed as invalid`);
      else if (!reasonFits(record.reason, want.invalid.reason)) invalidProblems.push(`${key}: reason ${show(record.reason)} does not fit ${String(want.invalid.reason)}`);
      else if (record.keptPrevious !== want.invalid.keptPrevious) invalidProblems.push(`${key}: keptPrevious ${record.keptPrevious}, expected ${want.invalid.keptPrevious}`);
    } else if (record) {
      invalidProblems.push(`${key}: listed as invalid (${show(record.reason)}) but its last value is valid`);
    }
  }
  for (const key of snapshot.endpoints.keys()) if (!expected.has(key)) problems.push(`${key}: phantom endpoint`);
  for (const key of snapshot.invalid.keys()) if (!expected.has(key)) invalidProblems.push(`${key}: phantom invalid record`);
  return { problems, invalidProblems, endpoints, exact, invalid, keptPrevious };
}

async function putEach(client: Etcd3, writes: readonly Write[], inFlight: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, writes.length) }, async () => {
      for (let i = next++; i < writes.length; i = next++) await client.put(writes[i]!.key).value(writes[i]!.value.bytes).exec();
    }),
  );
}

async function waitUntil(what: string, done: () => boolean, timeoutMillis = WAIT_MILLIS): Promise<number> {
  const t0 = performance.now();
  while (!done()) {
    if (performance.now() - t0 > timeoutMillis) throw new Error(`timed out after ${timeoutMillis} ms waiting for ${what}`);
    await sleep(20);
  }
  return performance.now() - t0;
}

type Slicer = (this: Buffer, start?: number, end?: number) => string;
const SLICERS = ['utf8Slice', 'latin1Slice', 'asciiSlice', 'ucs2Slice', 'hexSlice', 'base64Slice', 'base64urlSlice'] as const;

/**
 * Counts every decode, while installed, of more than `over` bytes (or characters) into a
 * string: Buffer's slicers (behind toString), TextDecoder and JSON.parse. The parser
 * decodes with TextDecoder; anything that turned a value over the limit into text would
 * pass through one of these.
 */
function installDecodeProbe(over: number) {
  const seen = { calls: 0, largest: 0 };
  const note = (size: number): void => {
    if (size <= over) return;
    seen.calls += 1;
    seen.largest = Math.max(seen.largest, size);
  };
  const proto = Buffer.prototype as unknown as Record<string, Slicer>;
  const slicers = SLICERS.filter((name) => typeof proto[name] === 'function').map((name) => [name, proto[name]!] as const);
  for (const [name, original] of slicers) {
    proto[name] = function (this: Buffer, start?: number, end?: number) {
      note((end ?? this.length) - (start ?? 0));
      return original.call(this, start, end);
    };
  }
  const decoder = TextDecoder.prototype as unknown as { decode: (this: unknown, input?: ArrayBufferView | ArrayBuffer, options?: unknown) => string };
  const decode = decoder.decode;
  decoder.decode = function (this: unknown, input?: ArrayBufferView | ArrayBuffer, options?: unknown) {
    if (input !== undefined) note(input.byteLength);
    return decode.call(this, input, options);
  };
  const parse = JSON.parse;
  JSON.parse = function (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) {
    note(String(text).length);
    return parse(text, reviver);
  };
  return {
    seen,
    restore(): void {
      for (const [name, original] of slicers) proto[name] = original;
      decoder.decode = decode;
      JSON.parse = parse;
    },
  };
}

/**
 * Watches what reaches the parser for values over the limit: whether each arrives as a
 * Buffer view into a larger (received) buffer rather than as its own copy, and how long
 * DesiredState.put takes to reject it.
 */
function installArrivalProbe(over: number, timedKeys: ReadonlySet<string>) {
  const seen = { over: 0, views: 0, millis: new Map<string, number>() };
  const put = DesiredState.prototype.put;
  DesiredState.prototype.put = function (this: DesiredState, kv: KeyValue): InvalidEndpoint | undefined {
    if (kv.value.byteLength <= over) return put.call(this, kv);
    seen.over += 1;
    const value = kv.value;
    if (Buffer.isBuffer(value) && value.buffer.byteLength > value.byteLength) seen.views += 1;
    const t0 = performance.now();
    const result = put.call(this, kv);
    if (timedKeys.has(kv.key)) seen.millis.set(kv.key, performance.now() - t0);
    return result;
  };
  return { seen, restore: () => void (DesiredState.prototype.put = put) };
}

/** A value valid in every way but its size: JSON padded to exactly `bytes`. */
function paddedValue(kind: string, addr: string, bytes: number): FuzzValue {
  const head = `{"addr":${JSON.stringify(addr)},"metadata":"`;
  const content = Buffer.from(`${head}${'x'.repeat(bytes - head.length - 2)}"}`);
  const verdict: Verdict =
    bytes > LIMITS.maxValueBytes
      ? { ok: false, reason: new RegExp(`^value is ${bytes} bytes, over the limit of ${LIMITS.maxValueBytes}$`) }
      : { ok: true, addr, anchors: LIMITS.defaultAnchors };
  return { kind, bytes: content, verdict };
}

function textValue(kind: string, text: string, addr: string, anchors: number): FuzzValue {
  return { kind, bytes: Buffer.from(text), verdict: { ok: true, addr, anchors } };
}

export const fuzzScenario: FaultScenario = {
  id: 'fuzz',
  title: 'Fuzzed etcd values through real etcd: initial listing and live watch',
  async run(context) {
    const count = 10_000;
    const poolCount = Math.round(count / POOL_SHARE);
    const t0 = performance.now();
    const generated = [
      ...fuzzValues(count - poolCount, SEED, { limits: LIMITS }),
      ...fuzzValues(poolCount, SEED + 1, { limits: LIMITS, loopback: true }),
    ];
    const sourceValues = generated.slice(0, count - poolCount);
    const poolValues: FuzzValue[] = [];
    // A random value the parser happens to accept may name any host: the pool would look it
    // up and dial it, and a lookup that hangs keeps the process alive after close(). Such
    // values go under the source-only prefix instead.
    for (const value of generated.slice(count - poolCount)) {
      const verdict = judge(value);
      (verdict.ok && !isLocalAddress(verdict.addr) ? sourceValues : poolValues).push(value);
    }
    context.log(`fuzz: ${fmt(count)} values generated (seed ${SEED}) in ${(performance.now() - t0).toFixed(0)} ms`);

    // Direct pass: the parser against the generator's verdicts, value by value.
    const judged = new Map<FuzzValue, Judged>();
    const disagreements: string[] = [];
    let parserThrew = 0;
    for (const value of generated) {
      try {
        judged.set(value, judge(value));
        if (value.verdict.ok === undefined) continue;
        const parsed = parseEndpointValue('fuzz', value.bytes, LIMITS);
        const want = value.verdict;
        const agrees = parsed.ok
          ? want.ok === true && parsed.endpoint.addr === want.addr && parsed.endpoint.anchors === want.anchors
          : want.ok === false && reasonFits(parsed.reason, want.reason);
        if (!agrees) {
          const got = parsed.ok ? `accepted as ${parsed.endpoint.addr}#${parsed.endpoint.anchors}` : `rejected: ${parsed.reason}`;
          const wanted = want.ok ? `${want.addr}#${want.anchors}` : String(want.reason);
          disagreements.push(`${value.kind} ${show(value.bytes.subarray(0, 200).toString('utf8'), 80)} ${got}, expected ${wanted}`);
        }
      } catch (err) {
        parserThrew += 1;
        disagreements.push(`${value.kind}: parser threw ${String(err)}`);
        judged.set(value, { ok: false, reason: 'parser threw' });
      }
    }
    const kinds = new Map<string, number>();
    for (const value of generated) kinds.set(value.kind, (kinds.get(value.kind) ?? 0) + 1);
    context.log(`fuzz: kinds ${[...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    const validCount = generated.filter((v) => judged.get(v)!.ok).length;
    const noVerdict = generated.filter((v) => v.verdict.ok === undefined).length;
    const overLimit = generated.filter((v) => v.bytes.byteLength > LIMITS.maxValueBytes).length;

    // Unit-level size check: a 1 MiB buffer is rejected by byteLength, with nothing decoded.
    const hugeBuffer = paddedValue('1 MiB value', '10.0.0.1:50051', HUGE_BYTES).bytes;
    const unitProbe = installDecodeProbe(LIMITS.maxValueBytes);
    let unitResult: ReturnType<typeof parseEndpointValue>;
    const u0 = performance.now();
    try {
      unitResult = parseEndpointValue('fuzz/huge', hugeBuffer, LIMITS);
    } finally {
      unitProbe.restore();
    }
    const unitMillis = performance.now() - u0;
    const hugeReason = `value is ${HUGE_BYTES} bytes, over the limit of ${LIMITS.maxValueBytes}`;

    await ensureEtcdInstalled({ log: context.log });
    const cluster = await startCluster({ members: 1 });
    const writer = new Etcd3({ hosts: cluster.hosts });
    const backend = new Backend({ name: 'fuzz-live' });
    const crashes: string[] = [];
    const onUncaught = (err: unknown): void => void crashes.push(`uncaught exception: ${err instanceof Error ? err.stack : String(err)}`);
    const onUnhandled = (reason: unknown): void => void crashes.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
    const hugeKeys = new Set([`${PREFIX}s/huge-listed`, `${PREFIX}s/huge-watched`]);
    const decodeProbe = installDecodeProbe(LIMITS.maxValueBytes);
    const arrivalProbe = installArrivalProbe(LIMITS.maxValueBytes, hugeKeys);
    let source: ReturnType<typeof createSource> | undefined;
    let pool: AnchorPool | undefined;
    try {
      await backend.start();
      const main = plan(sourceValues, `${PREFIX}s/`);
      const poolPlan = plan(poolValues, POOL_PREFIX);
      const live = textValue('live backend', `${backend.address}#2`, backend.address, 2);
      // One 1 MiB value in the initial listing; another overwrites a valid key through the watch.
      const first: Write[] = [
        ...main.first,
        ...poolPlan.first,
        { key: `${POOL_PREFIX}live`, value: live },
        { key: `${PREFIX}s/huge-listed`, value: paddedValue('1 MiB value', '10.0.0.1:50051', HUGE_BYTES) },
        { key: `${PREFIX}s/huge-watched`, value: textValue('valid before 1 MiB', '10.0.0.2:50051#3', '10.0.0.2:50051', 3) },
      ];
      const hugeWatched: Write = { key: `${PREFIX}s/huge-watched`, value: paddedValue('1 MiB value', '10.0.0.2:50051', HUGE_BYTES) };
      const second: Write[] = [...main.second, ...poolPlan.second, hugeWatched];
      const sentinels: Write[] = [
        { key: `${PREFIX}s/zz-final`, value: textValue('final put', '10.9.9.9:50051#2', '10.9.9.9:50051', 2) },
        { key: `${POOL_PREFIX}zz-final`, value: textValue('final put', backend.address, backend.address, 1) },
      ];
      for (const w of [...first, ...second, ...sentinels]) if (!judged.has(w.value)) judged.set(w.value, judge(w.value));

      const w0 = performance.now();
      await putEach(writer, first, IN_FLIGHT);
      const firstMillis = performance.now() - w0;
      context.log(`fuzz: ${fmt(first.length)} values written before the source starts (${firstMillis.toFixed(0)} ms)`);

      const invalidEvents = new Map<string, string[]>();
      let sourceErrors = 0;
      let resyncs = 0;
      source = createSource({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
      source.on('invalid', (record) => {
        const list = invalidEvents.get(record.key) ?? [];
        list.push(record.reason);
        invalidEvents.set(record.key, list);
      });
      source.on('error', () => void (sourceErrors += 1));
      source.on('resync', (info) => void (info.reason !== 'initial' && (resyncs += 1)));
      pool = createPool({ target: `etcd:///${POOL_PREFIX}`, etcd: { hosts: cluster.hosts }, logger: silentLogger, readyTimeoutMillis: WAIT_MILLIS });
      let poolErrors = 0;
      pool.on('error', () => void (poolErrors += 1));
      const r0 = performance.now();
      await Promise.all([source.ready({ timeoutMillis: WAIT_MILLIS }), pool.ready()]);
      const readyMillis = performance.now() - r0;
      context.log(`fuzz: source and pool ready in ${readyMillis.toFixed(0)} ms; writing ${fmt(second.length)} values live`);

      const w1 = performance.now();
      const hugeSent = { at: 0 };
      let hugeSeenAt = 0;
      source.on('invalid', (record) => {
        if (record.key === hugeWatched.key && hugeSeenAt === 0) hugeSeenAt = performance.now();
      });
      await Promise.all([
        putEach(writer, second.slice(0, -1), IN_FLIGHT),
        (async () => {
          hugeSent.at = performance.now();
          await writer.put(hugeWatched.key).value(hugeWatched.value.bytes).exec();
        })(),
      ]);
      const secondMillis = performance.now() - w1;
      await putEach(writer, sentinels, 2);
      const s = source;
      const p = pool;
      const sentinelMillis = await waitUntil('the final valid put to reach the source and the pool', () => {
        return s.snapshot().endpoints.has(sentinels[0]!.key) && p.snapshot().endpoints.has(sentinels[1]!.key);
      });
      context.log(`fuzz: live writes in ${secondMillis.toFixed(0)} ms; final put seen ${sentinelMillis.toFixed(0)} ms after`);

      // The pool still hands out leases on the live backend and its calls go through.
      let served = '';
      for (let attempt = 0; attempt < 20 && served === ''; attempt++) {
        const lease = await p.acquire({ timeoutMillis: 5000 });
        try {
          if (lease.address === backend.address) served = (await callEcho(lease.client(EchoClient))).server ?? 'reply';
        } finally {
          lease.release();
        }
      }

      decodeProbe.restore();
      arrivalProbe.restore();
      const allWrites = [...first, ...second, ...sentinels];
      const expected = expectedState(allWrites, judged);
      const sourceSnapshot = source.snapshot();
      const poolSnapshot = pool.snapshot();
      const ofSource = compare(sourceSnapshot, expected, PREFIX);
      const ofPool = compare(poolSnapshot, expected, POOL_PREFIX);

      // Every invalid write reported once, and each invalid key's last report is its current reason.
      const invalidWrites = allWrites.filter((w) => !judged.get(w.value)!.ok).length;
      const reported = [...invalidEvents.values()].reduce((n, list) => n + list.length, 0);
      const unreported: string[] = [];
      for (const [key, record] of sourceSnapshot.invalid) {
        if (invalidEvents.get(key)?.at(-1) !== record.reason) unreported.push(key);
      }

      const hugeListed = sourceSnapshot.invalid.get(`${PREFIX}s/huge-listed`);
      const hugeWatch = sourceSnapshot.invalid.get(hugeWatched.key);
      const keptForHuge = sourceSnapshot.endpoints.get(hugeWatched.key);
      const hugeMillis = [...arrivalProbe.seen.millis.values()];
      const sizeMillis = Math.max(unitMillis, ...hugeMillis);
      const hugeLatency = hugeSeenAt > 0 ? hugeSeenAt - hugeSent.at : NaN;
      const overArrivals = arrivalProbe.seen.over;

      const checks: FaultCheck[] = [
        check(
          '0 crashes: no uncaught exception or unhandled rejection; source and pool keep working',
          crashes.length === 0 && parserThrew === 0 && sourceErrors === 0 && poolErrors === 0 && served !== '',
          `${crashes.length} uncaught/unhandled${crashes.length ? ` (${crashes[0]!.split('\n')[0]})` : ''}, parser threw ${parserThrew}×, source errors ${sourceErrors}, pool errors ${poolErrors}; final put reached both in ${sentinelMillis.toFixed(0)} ms; ` +
            (served ? `a lease on the live backend served an Echo call (${served})` : 'no lease on the live backend served a call'),
        ),
        check(
          'the parser agrees with the value rules on every generated value',
          disagreements.length === 0,
          `${fmt(count - noVerdict)} values with a verdict by construction: ${disagreements.length} disagreements${disagreements.length ? `, e.g. ${disagreements.slice(0, 3).join(' | ')}` : ''}; ${fmt(noVerdict)} random values judged by the parser only`,
        ),
        check(
          'every key is intact: last valid value served exactly, fail-static on invalid overwrites, nothing extra',
          ofSource.problems.length === 0,
          `${fmt(expected.size)} keys: ${fmt(ofSource.endpoints)} endpoints expected, ${fmt(sourceSnapshot.endpoints.size)} served; ${fmt(ofSource.keptPrevious)} kept their last valid value under an invalid overwrite; ${ofSource.problems.length} mismatches${ofSource.problems.length ? `: ${ofSource.problems.slice(0, 3).join(' | ')}` : ''}`,
        ),
        check(
          'every key whose last value is invalid is listed with a reason that names the problem',
          ofSource.invalid === sourceSnapshot.invalid.size && ofSource.invalidProblems.length === 0,
          `${fmt(sourceSnapshot.invalid.size)} listed as invalid, ${fmt(ofSource.invalid)} expected, each reason checked against the rule the value breaks (the parser's own reason for random input); ${ofSource.invalidProblems.length} mismatches${ofSource.invalidProblems.length ? `: ${ofSource.invalidProblems.slice(0, 3).join(' | ')}` : ''}`,
        ),
        check(
          'every invalid write was reported once (invalid event)',
          reported === invalidWrites && unreported.length === 0 && resyncs === 0,
          `${fmt(reported)} invalid events for ${fmt(invalidWrites)} invalid writes; ${unreported.length} listed keys without a matching event; ${resyncs} resyncs (the watch never broke)`,
        ),
        check(
          'the pool on the sub-prefix holds the same state and survives',
          ofPool.problems.length + ofPool.invalidProblems.length === 0 && poolSnapshot.endpoints.size === ofPool.endpoints,
          `${fmt(poolSnapshot.endpoints.size)} endpoints and ${fmt(poolSnapshot.invalid.size)} invalid keys under ${POOL_PREFIX} (expected ${fmt(ofPool.endpoints)} and ${fmt(ofPool.invalid)}), ${fmt(p.stats().anchors.wanted)} anchors wanted; ${ofPool.problems.length + ofPool.invalidProblems.length} mismatches${ofPool.problems.length + ofPool.invalidProblems.length ? `: ${[...ofPool.problems, ...ofPool.invalidProblems].slice(0, 3).join(' | ')}` : ''}`,
        ),
        check(
          '1 MiB value rejected by its byte count, before any decoding',
          !unitResult.ok && unitResult.reason === hugeReason && unitProbe.seen.calls === 0 && hugeListed?.reason === hugeReason && hugeWatch?.reason === hugeReason && keptForHuge?.addr === '10.0.0.2:50051' && keptForHuge.anchors === 3,
          `direct call: ${unitResult.ok ? 'accepted' : show(unitResult.reason)} in ${unitMillis.toFixed(3)} ms with ${unitProbe.seen.calls} decodes over the limit; through etcd: listed ${hugeListed ? show(hugeListed.reason) : 'not rejected'}, ` +
            `watched ${hugeWatch ? show(hugeWatch.reason) : 'not rejected'} (${hugeMillis.map((m) => `${m.toFixed(3)} ms`).join(', ')} in DesiredState.put, put → invalid event ${hugeLatency.toFixed(0)} ms), previous value ${keptForHuge ? `${keptForHuge.addr}#${keptForHuge.anchors}` : 'lost'} kept`,
        ),
        check(
          'no value over the limit is copied or decoded on its way to the parser',
          decodeProbe.seen.calls === 0 && overArrivals > 0 && arrivalProbe.seen.views === overArrivals,
          `${fmt(overArrivals)} arrivals of values over ${fmt(LIMITS.maxValueBytes)} bytes (source and pool), ${fmt(arrivalProbe.seen.views)} of them Buffer views into the received message; ${decodeProbe.seen.calls} decodes of more than ${fmt(LIMITS.maxValueBytes)} bytes in the process${decodeProbe.seen.calls ? ` (largest ${fmt(decodeProbe.seen.largest)})` : ''}`,
        ),
      ];
      const invalidCount = count - validCount;
      return {
        id: 'fuzz',
        title: this.title,
        figure:
          `${fmt(count)} values (seed ${SEED}): ${fmt(validCount)} valid, ${fmt(invalidCount)} invalid (${fmt(overLimit)} over the size limit, ${fmt(noVerdict)} random judged by the parser), ` +
          `${crashes.length + parserThrew} crashes, ${disagreements.length} verdicts off, ${fmt(expected.size)} keys: ${fmt(ofSource.exact)} of ${fmt(ofSource.endpoints)} endpoints exact (${fmt(ofSource.keptPrevious)} fail-static), ` +
          `${fmt(sourceSnapshot.invalid.size)} invalid listed with reasons, ${ofSource.problems.length + ofSource.invalidProblems.length} mismatches; 1 MiB value rejected by size in ${sizeMillis.toFixed(3)} ms`,
        checks,
        settings: {
          seed: SEED,
          'pool values seed': SEED + 1,
          values: count,
          'values under the pool prefix': poolValues.length,
          'written before ready()': first.length,
          'written after ready() (watch)': second.length,
          'in flight': IN_FLIGHT,
          maxValueBytes: LIMITS.maxValueBytes,
          maxAnchorsPerKey: LIMITS.maxAnchorsPerKey,
          'huge value bytes': HUGE_BYTES,
          'MB written': Number((allWrites.reduce((n, w) => n + w.value.bytes.byteLength, 0) / 1e6).toFixed(1)),
          'write ms (before / after ready)': `${firstMillis.toFixed(0)} / ${secondMillis.toFixed(0)}`,
          etcd: 'single node on loopback',
          profile: context.short ? 'short (same 10,000 values)' : 'full',
        },
      };
    } finally {
      decodeProbe.restore();
      arrivalProbe.restore();
      await pool?.close().catch(() => undefined);
      await source?.close().catch(() => undefined);
      writer.close();
      await backend.kill().catch(() => undefined);
      await cluster.stop();
      // Late errors from the teardown are still counted above; the listeners go only now.
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUnhandled);
    }
  },
};
