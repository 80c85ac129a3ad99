// Generated etcd values for the fuzz fault scenario. Each value carries the verdict the
// README's value rules call for, decided here while building it (not by running the
// parser), so the scenario can catch a wrong accept or a wrong reject, not only a crash.
// Values built from random bytes have no such verdict; for those the parser's answer is
// taken and only "never throws, always explains" is checked.
import fc from 'fast-check';

export interface FuzzLimits {
  readonly defaultAnchors: number;
  readonly maxAnchorsPerKey: number;
  readonly maxValueBytes: number;
}

export type Verdict =
  | { readonly ok: true; readonly addr: string; readonly anchors: number }
  | { readonly ok: false; readonly reason: RegExp }
  | { readonly ok: undefined };

export interface FuzzValue {
  /** The family the value comes from, e.g. "port out of range" (for the breakdown). */
  readonly kind: string;
  readonly bytes: Buffer;
  readonly verdict: Verdict;
}

export interface FuzzOptions {
  readonly limits: FuzzLimits;
  /**
   * Valid addresses only loopback IP literals (127/8, ::1) or unix paths: for values a live
   * pool dials, so it never connects to, or looks up, any host.
   */
  readonly loopback?: boolean;
}

const NO_VERDICT: Verdict = { ok: undefined };
const rejected = (reason: RegExp): Verdict => ({ ok: false, reason });
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** An address problem as reported for a JSON value ("addr: …") or a plain-text one (bare). */
const addrReason = (reason: RegExp, json: boolean): Verdict => rejected(new RegExp(`^${json ? 'addr: ' : ''}${reason.source.replace(/^\^/, '')}`, 's'));

/** The size rule comes first for every value, whatever its content. */
function finish(kind: string, content: string | Buffer, verdict: Verdict, limits: FuzzLimits): FuzzValue {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (bytes.byteLength > limits.maxValueBytes) {
    return { kind, bytes, verdict: rejected(new RegExp(`^value is ${bytes.byteLength} bytes, over the limit of ${limits.maxValueBytes}$`)) };
  }
  return { kind, bytes, verdict };
}

const ws = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n', '  \n');

/** A field name as Go's encoding/json still matches it: any mix of upper and lower case. */
function anyCase(name: string): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constant(name), weight: 4 },
    { arbitrary: fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((up) => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join('')), weight: 1 },
  );
}

/** JSON text of an object whose fields are given in order, as [name, JSON text] pairs. */
const objectText = (fields: readonly (readonly [string, string])[]): string => `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;

function nested(depth: number, inner: string, arrays: boolean): string {
  return arrays ? `${'['.repeat(depth)}${inner}${']'.repeat(depth)}` : `${'{"n":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
}

export function fuzzValueArbitrary(options: FuzzOptions): fc.Arbitrary<FuzzValue> {
  const { limits } = options;
  const max = limits.maxAnchorsPerKey;

  // --- addresses the README accepts -------------------------------------------------
  const port = fc.integer({ min: 1, max: 65535 });
  const label = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?$/);
  const longLabel = fc.stringMatching(/^[a-z][a-z0-9]{62}$/);
  const topLabel = fc.stringMatching(/^[A-Za-z](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?$/);
  const hostname = fc
    .tuple(fc.array(fc.oneof({ arbitrary: label, weight: 9 }, { arbitrary: longLabel, weight: 1 }), { maxLength: 3 }), topLabel, fc.boolean())
    .map(([labels, top, dot]) => `${[...labels, top].join('.')}${dot ? '.' : ''}`);
  const ipv4 = options.loopback
    ? fc.tuple(fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map(([a, b, c]) => `127.${a}.${b}.${c}`)
    : fc.ipV4();
  const ipv6 = options.loopback ? fc.constantFrom('::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1') : fc.ipV6();
  const unixPath = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}(?:\/[A-Za-z0-9._-]{1,16}){0,4}$/);
  const validAddr = fc.oneof(
    { arbitrary: fc.tuple(ipv4, port).map(([h, p]) => `${h}:${p}`), weight: 4 },
    { arbitrary: fc.tuple(options.loopback ? ipv4 : hostname, port).map(([h, p]) => `${h}:${p}`), weight: 3 },
    { arbitrary: fc.tuple(ipv6, port).map(([h, p]) => `[${h}]:${p}`), weight: 2 },
    { arbitrary: fc.tuple(fc.constantFrom('unix:/', 'unix:///', 'unix:'), unixPath).map(([s, p]) => `${s}${p}`), weight: 1 },
  );
  const validAnchors = fc.oneof(
    { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 6 },
    { arbitrary: fc.integer({ min: 1, max }), weight: 2 },
    { arbitrary: fc.constantFrom(1, max), weight: 1 },
  );
  // Metadata without an "anchors" field (that one is generated on purpose where wanted).
  const metadata = fc.jsonValue({ maxDepth: 3 }).map((m) => {
    if (m !== null && typeof m === 'object' && !Array.isArray(m) && Object.hasOwn(m, 'anchors')) {
      const { anchors: _drop, ...rest } = m as Record<string, unknown>;
      return rest;
    }
    return m;
  });

  // --- values the README accepts ------------------------------------------------------
  const nativeValid = fc
    .record({ addr: validAddr, anchors: fc.option(validAnchors), meta: fc.option(metadata), badMetaAnchors: fc.boolean(), order: fc.nat(5), before: ws, after: ws, indent: fc.boolean() })
    .map(({ addr, anchors, meta, badMetaAnchors, order, before, after, indent }) => {
      const object: Record<string, unknown> = {};
      const fields: [string, unknown][] = [['addr', addr]];
      if (anchors !== null) fields.push(['anchors', anchors]);
      // With "anchors" given, metadata.anchors is not looked at, even when it is nonsense.
      if (meta !== null) fields.push(['metadata', anchors !== null && badMetaAnchors ? { anchors: 'nonsense', meta } : meta]);
      for (let i = 0; i < fields.length; i++) {
        const [name, value] = fields[(i + order) % fields.length]!;
        object[name] = value;
      }
      const text = `${before}${JSON.stringify(object, null, indent ? 2 : undefined)}${after}`;
      return finish('native JSON', text, { ok: true, addr, anchors: anchors ?? limits.defaultAnchors }, limits);
    });

  const goValid = fc
    .record({
      addr: validAddr,
      op: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 }))),
      meta: fc.oneof(fc.constant(undefined), fc.constant(null), metadata, fc.tuple(validAnchors, fc.dictionary(fc.constantFrom('region', 'weight', 'v'), fc.jsonValue({ maxDepth: 2 }))).map(([a, rest]) => ({ ...rest, anchors: a }))),
      names: fc.tuple(anyCase('Op'), anyCase('Addr'), anyCase('Metadata')),
      extra: fc.option(fc.tuple(fc.constantFrom('Key', 'Weight', 'Endpoint', 'Attributes'), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer({ min: 33, max: 5000 }).map((d) => ({ deep: true, d }))))),
    })
    .map(({ addr, op, meta, names: [opName, addrName, metaName], extra }) => {
      const fields: [string, string][] = [];
      if (op !== null) fields.push([opName, String(op)]);
      fields.push([addrName, JSON.stringify(addr)]);
      if (meta !== undefined) fields.push([metaName, JSON.stringify(meta)]);
      // Unknown fields are ignored whatever they hold, even nesting far past the metadata limit.
      if (extra !== null) {
        const [name, value] = extra;
        const deep = value !== null && typeof value === 'object' && (value as { deep?: boolean }).deep === true;
        fields.push([name, deep ? nested((value as { d: number }).d, '1', true) : JSON.stringify(value)]);
      }
      const metaAnchors = meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>)['anchors'] : undefined;
      const anchors = typeof metaAnchors === 'number' ? metaAnchors : limits.defaultAnchors;
      return finish('Go endpoints.Manager', objectText(fields), { ok: true, addr, anchors }, limits);
    });

  const textValid = fc
    .record({ addr: validAddr, anchors: fc.option(validAnchors), zeros: fc.nat(2), before: ws, after: ws })
    .map(({ addr, anchors, zeros, before, after }) => {
      const suffix = anchors === null ? '' : `#${'0'.repeat(zeros)}${anchors}`;
      return finish('text host:port#N', `${before}${addr}${suffix}${after}`, { ok: true, addr, anchors: anchors ?? limits.defaultAnchors }, limits);
    });

  // --- an address (good or bad) placed in one of the three forms ------------------------
  /** `text: false` for addresses the text form would read differently ("#", edge whitespace). */
  const placed = (kind: string, addr: fc.Arbitrary<string>, reason: RegExp) =>
    fc.tuple(addr, fc.nat(2), anyCase('Addr')).map(([a, form, goName]) => {
      const content = form === 0 ? JSON.stringify({ addr: a }) : form === 1 ? objectText([['Op', '0'], [goName, JSON.stringify(a)], ['Metadata', 'null']]) : a;
      return finish(kind, content, addrReason(reason, form !== 2), limits);
    });

  const badPort = placed(
    'port out of range',
    fc.tuple(fc.oneof(ipv4, hostname), fc.oneof(fc.constantFrom('0', '65536', '99999999999999999999', '00'), fc.integer({ min: 65536, max: 10_000_000 }).map(String))).map(([h, p]) => `${h}:${p}`),
    /^port [0-9]+ is out of range 1-65535 in /,
  );
  const portNotNumber = placed(
    'port not a number',
    fc.tuple(fc.oneof(ipv4, hostname), fc.constantFrom('-1', '+80', '8O', '0x50', '1e3', '80.0', 'http', '٨٠')).map(([h, p]) => `${h}:${p}`),
    /^port ".*" is not a number in /,
  );
  const noPort = placed('missing port', fc.oneof(ipv4, hostname, fc.oneof(ipv4, hostname).map((h) => `${h}:`)), /^missing port in /);

  const badHostText = fc.oneof(
    label.map((l) => `-${l}`),
    label.map((l) => `${l}-`),
    fc.tuple(label, label).map(([a, b]) => `${a}..${b}`),
    label.map((l) => `.${l}`),
    fc.tuple(longLabel, fc.constantFrom('a', '0')).map(([l, c]) => `${l}${c}.example`),
    fc.array(fc.stringMatching(/^[a-z]{60}$/), { minLength: 5, maxLength: 8 }).map((ls) => ls.join('.')),
    fc.tuple(label, fc.constantFrom(...'!$%&*()+,;=<>?^`{|}~\'"\\/'), label).map(([a, c, b]) => `${a}${c}${b}`),
    fc.constantFrom('bücher.de', 'сервер', '例え.jp', 'host\u200b.local', 'caf\u00e9'),
    fc.constantFrom('1.2.3', '256.1.1.1', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '999', '4294967296'),
  );
  const badHost = placed(
    'bad host',
    fc.tuple(badHostText, port).map(([h, p]) => `${h}:${p}`),
    /^".*" is not a valid hostname or IPv4 address$/,
  );
  const missingHost = placed('missing host', port.map((p) => `:${p}`), /^missing host in /);
  const whitespaceInside = placed(
    'whitespace or NUL in address',
    fc.tuple(label, fc.constantFrom(' ', '\t', '\n', '\u0000', '\u00a0', '\u2028'), port).map(([h, c, p]) => `${h}${c}x:${p}`),
    /^address ".*" contains whitespace or NUL$/,
  );
  const tooLong = placed(
    'address over 1024 characters',
    fc.integer({ min: 1025, max: 5000 }).map((n) => `${'a'.repeat(n - 3)}:80`),
    /^address is longer than 1024 characters$/,
  );

  const v6Forms = fc.oneof(
    fc.tuple(ipv6, port).map(([h, p]) => [`${h}:${p}`, /^IPv6 address must be in brackets/] as const),
    ipv6.map((h) => [`[${h}]`, /^missing port in /] as const),
    ipv6.map((h) => [`[${h}]:`, /^missing port in /] as const),
    fc.tuple(ipv6, port).map(([h, p]) => [`[${h}]${p}`, /^missing port in /] as const),
    fc.tuple(ipv6, port).map(([h, p]) => [`[${h}:${p}`, /^unclosed "\[" in /] as const),
    fc.tuple(fc.oneof(ipv4, hostname, fc.constant(''), fc.constant('::g'), fc.constant(':::')), port).map(([h, p]) => [`[${h}]:${p}`, /^".*" in brackets is not an IPv6 address$/] as const),
    fc.tuple(ipv6, fc.constantFrom('0', '65536')).map(([h, p]) => [`[${h}]:${p}`, /^port [0-9]+ is out of range/] as const),
  );
  const badIpv6 = fc.tuple(v6Forms, fc.nat(2)).map(([[addr, reason], form]) =>
    finish('bad IPv6 form', form === 0 ? JSON.stringify({ addr }) : form === 1 ? JSON.stringify({ Addr: addr }) : addr, addrReason(reason, form !== 2), limits),
  );
  // A zone id ("%eth0") is for the parser to decide: there is no README rule for it.
  const ipv6Zone = fc.tuple(fc.constantFrom('fe80::1', '::1', 'fe80::a:b'), fc.constantFrom('%eth0', '%1', '%', '%lo%'), port).map(([h, z, p]) =>
    finish('IPv6 with zone', `[${h}${z}]:${p}`, NO_VERDICT, limits),
  );
  const badUnix = fc.oneof(
    fc.constantFrom('unix:', 'unix://').map((a) => [a, /^unix address ".*" has no path$/] as const),
    fc.tuple(unixPath, fc.constantFrom(' ', '\t', '\u0000')).map(([p, c]) => [`unix:/${p}${c}x`, /^address ".*" contains whitespace or NUL$/] as const),
    fc.integer({ min: 1020, max: 3000 }).map((n) => [`unix:/${'p'.repeat(n)}`, /^address is longer than 1024 characters$/] as const),
  ).chain(([addr, reason]) => fc.nat(2).map((form) => finish('bad unix path', form === 0 ? JSON.stringify({ addr }) : form === 1 ? JSON.stringify({ Op: 0, Addr: addr }) : addr, addrReason(reason, form !== 2), limits)));
  const emptyAddr = fc.constantFrom('{"addr":""}', '{"Addr":""}', '{"ADDR":"","anchors":2}').map((t) => finish('empty address', t, rejected(/^addr: address is empty$/), limits));

  // --- anchor counts --------------------------------------------------------------------
  const outOfRange = fc.oneof(fc.constantFrom(0, max + 1, -1, 2 ** 31, 2 ** 53 + 2, 1e300, -1e300), fc.integer({ min: -1000, max: 0 }), fc.integer({ min: max + 1, max: 2 ** 31 }));
  const fractional = fc.oneof(fc.integer({ min: 0, max }).map((n) => n + 0.5), fc.constantFrom(0.1, 1e-7, 63.999, 1.0000001));
  const anchorsJson: fc.Arbitrary<readonly [string, RegExp]> = fc.oneof(
    // Past 2^53 a number is no longer an exact integer, so either complaint names the problem.
    outOfRange.map((n) => [JSON.stringify(n), Number.isSafeInteger(n) ? new RegExp(`must be between 1 and ${max}`) : new RegExp(`must be (an integer|between 1 and ${max})`)] as const),
    fractional.map((n) => [JSON.stringify(n), /must be an integer/] as const),
    fc.constantFrom('"4"', 'true', 'null', '[]', '[4]', '{}', '{"n":4}', '1e400', '-1e400', '""').map((t) => [t, /must be a number/] as const),
  );
  const badNativeAnchors = fc.tuple(validAddr, anchorsJson, anyCase('anchors')).map(([addr, [anchors, reason], name]) =>
    finish('bad anchors (native)', objectText([['addr', JSON.stringify(addr)], [name, anchors]]), rejected(new RegExp(`^anchors: ${reason.source}`)), limits),
  );
  const badGoAnchors = fc.tuple(validAddr, anchorsJson, anyCase('Metadata')).map(([addr, [anchors, reason], name]) =>
    finish('bad anchors (Go Metadata)', objectText([['Op', '0'], ['Addr', JSON.stringify(addr)], [name, `{"anchors":${anchors}}`]]), rejected(new RegExp(`^metadata\\.anchors: ${reason.source}`)), limits),
  );
  const badTextAnchors = fc
    .tuple(validAddr.filter((a) => !a.includes('#')), fc.oneof(fc.constantFrom('0', '00', `${max + 1}`, '99999999999999999999999'), fc.integer({ min: max + 1, max: 1e9 }).map(String)))
    .map(([addr, n]) => finish('bad anchors (text #N)', `${addr}#${n}`, rejected(new RegExp(`^anchor count ${n} must be between 1 and ${max}$`)), limits));
  const textAnchorsNotNumber = fc
    .tuple(validAddr, fc.constantFrom('', '-3', '1.5', 'x', ' 3', '+2', '1e1', '٣'))
    .map(([addr, n]) => finish('bad anchors (text #N)', `${addr}#${n}`, rejected(new RegExp(`^anchor count ${escape(JSON.stringify(n))} after "#" must be an integer N or a range N-M$`)), limits));

  // --- wrong types and wrong shapes -----------------------------------------------------
  const notString = fc.oneof(fc.integer().map(String), fc.constantFrom('true', 'false', 'null', '[]', '["h:1"]', '{}', '{"host":"h","port":1}', '1.5'));
  const addrWrongType = fc.tuple(notString, anyCase('addr')).map(([v, name]) => finish('addr of wrong type', objectText([[name, v]]), rejected(/^addr: must be a string$/), limits));
  const opWrongType = fc.tuple(validAddr, fc.constantFrom('"0"', '-1', '256', '1.5', 'true', 'null', '[]', '{}', '1e400')).map(([addr, op]) =>
    finish('Op of wrong type', objectText([['Op', op], ['Addr', JSON.stringify(addr)]]), rejected(/^op: /), limits),
  );
  const notObject = fc.oneof(
    fc.tuple(validAddr, ws).map(([a, w]) => [`${w}[${JSON.stringify({ addr: a })}]`, /^JSON value must be an object/] as const),
    validAddr.map((a) => [JSON.stringify(a), /^JSON value must be an object/] as const),
    fc.constantFrom('null', 'true', 'false', '0', '-1', '1.5', '1e400').map((t) => [t, /^missing port in /] as const),
  ).map(([t, reason]) => finish('JSON of wrong shape', t, rejected(reason), limits));
  const missingAddr = fc
    .oneof(fc.constant('{}'), validAnchors.map((n) => `{"anchors":${n}}`), fc.constant('{"Op":0,"Metadata":{"addr":"h:1"}}'), fc.constant('{"address":"h:1"}'), fc.constant('{"Addr ":"h:1"}'))
    .map((t) => finish('no addr field', t, rejected(/^JSON value has no "addr"/), limits));
  const malformed = fc
    .oneof(
      fc.tuple(nativeValid, fc.nat()).map(([v, cut]) => {
        const text = v.bytes.toString('utf8').trim();
        return text.slice(0, 1 + (cut % Math.max(1, text.length - 1)));
      }),
      validAddr.map((a) => `${JSON.stringify({ addr: a })} x`),
      validAddr.map((a) => `{'addr':'${a}'}`),
      validAddr.map((a) => `{"addr":${JSON.stringify(a)},}`),
      validAddr.map((a) => `{"addr":${JSON.stringify(a)} /* port */}`),
      validAddr.map((a) => `{"addr":${JSON.stringify(a)},"anchors":NaN}`),
      validAddr.map((a) => `"${a}`),
    )
    // A cut that leaves only "{" or whitespace still starts a JSON object.
    .filter((t) => t.trim().startsWith('{') || t.trim().startsWith('"'))
    .map((t) => finish('malformed JSON', t, rejected(/^value is not valid JSON \(/), limits));

  // --- nesting --------------------------------------------------------------------------
  const depthOk = fc.integer({ min: 1, max: 32 });
  const depthBad = fc.oneof(fc.integer({ min: 33, max: 40 }), fc.integer({ min: 41, max: 25_000 }));
  const deepMetadata = fc.oneof(
    fc.tuple(validAddr, depthOk, fc.boolean()).map(([addr, d, arrays]) =>
      finish('deep nesting', `{"addr":${JSON.stringify(addr)},"metadata":${nested(d, '0', arrays)}}`, { ok: true, addr, anchors: limits.defaultAnchors }, limits),
    ),
    fc.tuple(validAddr, depthBad, fc.boolean()).map(([addr, d, arrays]) =>
      finish('deep nesting', `{"addr":${JSON.stringify(addr)},"metadata":${nested(d, '0', arrays)}}`, rejected(/^metadata: is nested deeper than 32 levels$/), limits),
    ),
    fc.tuple(depthBad, fc.boolean()).map(([d, arrays]) => finish('deep nesting', `{"addr":${nested(d, '"h:1"', arrays)}}`, rejected(/^addr: must be a string$/), limits)),
    fc.tuple(validAddr, depthBad).map(([addr, d]) => finish('deep nesting', `{"addr":${JSON.stringify(addr)},"anchors":${nested(d, '4', true)}}`, rejected(/^anchors: must be a number$/), limits)),
    // Top-level "[[[…" is not JSON to the parser (only "{", '"' and "[{" are): it is read as an address.
    depthBad.map((d) => {
      const text = nested(d, '', true);
      return finish('deep nesting', text, rejected(text.length > 1024 ? /^address is longer than 1024 characters$/ : /in brackets is not an IPv6 address$/), limits);
    }),
    depthBad.map((d) => finish('deep nesting', `[${nested(d, '0', false)}]`, rejected(/^JSON value must be an object/), limits)),
  );

  // --- size -----------------------------------------------------------------------------
  const limit = limits.maxValueBytes;
  const padded = (addr: string, size: number): string => {
    const head = `{"addr":${JSON.stringify(addr)},"metadata":"`;
    return `${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`;
  };
  const huge = fc.oneof(
    // Under the limit: big but valid.
    fc.tuple(validAddr, fc.integer({ min: 4096, max: limit })).map(([addr, n]) => finish('huge JSON', padded(addr, n), { ok: true, addr, anchors: limits.defaultAnchors }, limits)),
    // Exactly at the limit (valid) and one byte over, padded with trailing whitespace.
    fc.tuple(validAddr, fc.constantFrom(0, 1)).map(([addr, over]) => {
      const text = JSON.stringify({ addr });
      return finish('huge JSON', `${text}${' '.repeat(limit + over - text.length)}`, { ok: true, addr, anchors: limits.defaultAnchors }, limits);
    }),
    // Over the limit; multi-byte characters make the byte count differ from the length.
    fc.tuple(validAddr, fc.integer({ min: limit + 1, max: 4 * limit })).map(([addr, n]) => finish('huge JSON', padded(addr, n), NO_VERDICT, limits)),
    fc.tuple(validAddr, fc.integer({ min: Math.ceil(limit / 2), max: limit - 100 })).map(([addr, n]) =>
      finish('huge JSON', `{"addr":${JSON.stringify(addr)},"metadata":"${'é'.repeat(n)}"}`, { ok: true, addr, anchors: limits.defaultAnchors }, limits),
    ),
    fc.integer({ min: limit + 1, max: 2 * limit }).map((n) => finish('huge JSON', Buffer.alloc(n, 0xff), NO_VERDICT, limits)),
  );

  // --- bytes and text with no structure -------------------------------------------------
  const randomBytes = fc.uint8Array({ maxLength: 512 }).map((b) => finish('random bytes', Buffer.from(b), NO_VERDICT, limits));
  const randomText = fc.string({ unit: 'binary', maxLength: 200 }).map((s) => finish('random text', s, NO_VERDICT, limits));
  // Byte runs that are invalid UTF-8 wherever they are put: never-valid bytes, a stray
  // continuation byte after ASCII, an overlong NUL, an encoded surrogate.
  const never = fc.constantFrom([0xff], [0xfe], [0xc1], [0x41, 0x80], [0x41, 0xbf], [0xc0, 0x80], [0xed, 0xa0, 0x80]);
  const badUtf8 = fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.nat(), never).map(([b, at, insert]) => {
    const bytes = Buffer.from(b);
    const i = at % (bytes.length + 1);
    return finish('invalid UTF-8', Buffer.concat([bytes.subarray(0, i), Buffer.from(insert), bytes.subarray(i)]), rejected(/^value is not valid UTF-8$/), limits);
  });
  const blank = fc.constantFrom('', ' ', '\n', '\t\r\n ', '\u00a0', '\ufeff', '\u2028 ').map((t) => finish('empty or blank', t, rejected(/^value is empty$/), limits));
  const flipped = fc.tuple(fc.oneof(nativeValid, goValid, textValid), fc.nat(), fc.nat(255)).map(([v, at, byte]) => {
    const bytes = Buffer.from(v.bytes);
    if (bytes.length > 0) bytes[at % bytes.length] = byte;
    return finish('one byte changed', bytes, NO_VERDICT, limits);
  });

  return fc.oneof(
    { arbitrary: nativeValid, weight: 14 },
    { arbitrary: goValid, weight: 10 },
    { arbitrary: textValid, weight: 10 },
    { arbitrary: badPort, weight: 5 },
    { arbitrary: portNotNumber, weight: 2 },
    { arbitrary: noPort, weight: 2 },
    { arbitrary: badHost, weight: 6 },
    { arbitrary: missingHost, weight: 1 },
    { arbitrary: whitespaceInside, weight: 2 },
    { arbitrary: tooLong, weight: 1 },
    { arbitrary: badIpv6, weight: 5 },
    { arbitrary: ipv6Zone, weight: 1 },
    { arbitrary: badUnix, weight: 2 },
    { arbitrary: emptyAddr, weight: 1 },
    { arbitrary: badNativeAnchors, weight: 5 },
    { arbitrary: badGoAnchors, weight: 3 },
    { arbitrary: badTextAnchors, weight: 2 },
    { arbitrary: textAnchorsNotNumber, weight: 2 },
    { arbitrary: addrWrongType, weight: 2 },
    { arbitrary: opWrongType, weight: 2 },
    { arbitrary: notObject, weight: 2 },
    { arbitrary: missingAddr, weight: 1 },
    { arbitrary: malformed, weight: 4 },
    { arbitrary: deepMetadata, weight: 4 },
    { arbitrary: huge, weight: 2 },
    { arbitrary: randomBytes, weight: 4 },
    { arbitrary: randomText, weight: 2 },
    { arbitrary: badUtf8, weight: 2 },
    { arbitrary: blank, weight: 1 },
    { arbitrary: flipped, weight: 3 },
  );
}

/** `count` values, the same ones for the same seed. */
export function fuzzValues(count: number, seed: number, options: FuzzOptions): FuzzValue[] {
  return fc.sample(fuzzValueArbitrary(options), { seed, numRuns: count });
}
