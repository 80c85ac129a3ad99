import t from 'tap';
import fc from 'fast-check';
import { parseEndpointValue, sameEndpoint, zoneSchema, type ParseLimits } from '../lib/discovery/endpoint-entry.js';
import { isZoneName } from '../lib/core/zone-name.js';

const limits: ParseLimits = { defaultAnchors: 2, maxAnchorsPerKey: 64, maxValueBytes: 1024 };
const parse = (value: string | Uint8Array, l = limits) =>
  parseEndpointValue('services/echo/k', typeof value === 'string' ? Buffer.from(value) : value, l);

t.test('the three value forms parse', async (t) => {
  const cases: [string, string, object][] = [
    ['native JSON', '{"addr":"10.0.0.5:50051","anchors":4}', { addr: '10.0.0.5:50051', anchors: 4, format: 'json' }],
    ['native JSON with metadata', '{"addr":"h:1","anchors":3,"metadata":{"zone":"a"}}', { anchors: 3, metadata: { zone: 'a' }, format: 'json' }],
    ['native JSON without anchors uses the default', '{"addr":"h:1"}', { anchors: 2, format: 'json' }],
    // Exactly what Go's endpoints.Manager writes: json.Marshal of internal.Update{Op, Addr, Metadata}.
    ['Go Manager value, nil metadata', '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":null}', { addr: '10.0.0.5:50051', anchors: 2, format: 'go' }],
    ['Go Manager value, anchors in metadata', '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":{"anchors":4}}', { anchors: 4, format: 'go' }],
    ['Go value without Op or Metadata', '{"Addr":"10.0.0.5:50051"}', { anchors: 2, format: 'go' }],
    ['Go field names are case-insensitive', '{"aDdR":"h:7","METADATA":{"anchors":5}}', { addr: 'h:7', anchors: 5, format: 'go' }],
    ['Go Op is ignored on a PUT', '{"Op":1,"Addr":"h:1"}', { addr: 'h:1' }],
    ['Go metadata that is not an object', '{"Addr":"h:1","Metadata":"v1"}', { anchors: 2, metadata: 'v1' }],
    ['Go value with unknown fields', '{"Addr":"h:1","Weight":3}', { addr: 'h:1' }],
    ['plain host:port', '10.0.0.5:50051', { addr: '10.0.0.5:50051', anchors: 2, format: 'text' }],
    ['plain host:port#N', '10.0.0.5:50051#4', { addr: '10.0.0.5:50051', anchors: 4, format: 'text' }],
    ['plain text with a trailing newline', '10.0.0.5:50051\n', { addr: '10.0.0.5:50051' }],
    ['plain IPv6', '[::1]:50051#3', { addr: '[::1]:50051', anchors: 3 }],
    ['plain unix socket', 'unix:/tmp/echo.sock', { addr: 'unix:/tmp/echo.sock' }],
  ];
  for (const [name, value, expected] of cases) {
    const result = parse(value);
    t.ok(result.ok, name);
    if (result.ok) t.match(result.endpoint, { key: 'services/echo/k', ...expected }, name);
  }
});

t.test('invalid values give a readable reason', async (t) => {
  const cases: [string, string | Uint8Array, RegExp][] = [
    ['empty', '', /empty/],
    ['blank', '  \n', /empty/],
    ['not JSON', '{"addr":', /not valid JSON/],
    ['JSON array', '[{"addr":"h:1"}]', /must be an object/],
    ['JSON string', '"h:1"', /must be an object/],
    ['missing addr', '{"anchors":4}', /no "addr"/],
    ['addr not a string', '{"addr":5}', /addr: must be a string/],
    ['anchors zero', '{"addr":"h:1","anchors":0}', /anchors: must be between 1 and 64/],
    ['anchors negative', '{"addr":"h:1","anchors":-3}', /anchors: must be between 1 and 64/],
    ['anchors huge', '{"addr":"h:1","anchors":1e9}', /anchors: must be between 1 and 64/],
    ['anchors fractional', '{"addr":"h:1","anchors":2.5}', /anchors: must be an integer/],
    ['anchors string', '{"addr":"h:1","anchors":"4"}', /anchors: must be a number/],
    ['Go metadata anchors out of range', '{"Addr":"h:1","Metadata":{"anchors":65}}', /metadata\.anchors: must be between 1 and 64/],
    ['Go Op wrong type', '{"Op":"add","Addr":"h:1"}', /op: must be a number/],
    ['two problems at once', '{"addr":"h","anchors":0}', /addr: missing port.*; anchors:/],
    ['port 0', '{"addr":"h:0"}', /out of range/],
    ['port 65536', 'h:65536', /out of range/],
    ['text anchors zero', 'h:1#0', /between 1 and 64/],
    ['text anchors not a number', 'h:1#x', /must be an integer/],
    ['bare IPv6', '::1:50051', /brackets/],
    ['invalid UTF-8', new Uint8Array([0x68, 0x3a, 0x31, 0xff]), /UTF-8/],
    ['deep metadata', `{"addr":"h:1","metadata":${'['.repeat(40)}${']'.repeat(40)}}`, /nested deeper than 32/],
  ];
  for (const [name, value, reason] of cases) {
    const result = parse(value);
    t.notOk(result.ok, name);
    if (!result.ok) t.match(result.reason, reason, name);
  }
});

t.test('a value over the size limit is rejected before it is decoded', async (t) => {
  const big = Buffer.alloc(2048, 0x20);
  const result = parse(big);
  t.notOk(result.ok);
  if (!result.ok) t.match(result.reason, /2048 bytes, over the limit of 1024/);
});

t.test('the anchors cap is configurable', async (t) => {
  const tight = { ...limits, maxAnchorsPerKey: 3 };
  t.ok(parse('{"addr":"h:1","anchors":3}', tight).ok);
  const result = parse('{"addr":"h:1","anchors":4}', tight);
  t.notOk(result.ok);
  if (!result.ok) t.match(result.reason, /between 1 and 3/);
});

t.test('property: parsing arbitrary bytes or JSON never throws and always explains a rejection', async (t) => {
  const anyJson = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v));
  const almostValid = fc
    .record({
      addr: fc.oneof(fc.string(), fc.constantFrom('h:1', '[::1]:80', 'unix:/s', '1.2.3.4:0', 'x:65536')),
      anchors: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(undefined)),
    })
    .map((v) => JSON.stringify(v));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), anyJson, almostValid, fc.string()), (value) => {
      const result = parse(value);
      if (result.ok) {
        return result.endpoint.anchors >= 1 && result.endpoint.anchors <= 64 && result.endpoint.addr.length > 0;
      }
      return typeof result.reason === 'string' && result.reason.length > 0;
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 generated values parsed without throwing');
});

t.test('maxAgeSeconds: a native field, or Metadata.maxAgeSeconds in the Go form; 0 turns refresh off for the key', async (t) => {
  const ok = (value: string) => {
    const result = parse(value);
    return result.ok ? result.endpoint : result.reason;
  };
  t.match(ok('{"addr":"h:1","anchors":2,"maxAgeSeconds":300}'), { maxAgeSeconds: 300, format: 'json' });
  t.match(ok('{"addr":"h:1","maxAgeSeconds":0.5}'), { maxAgeSeconds: 0.5 }, 'fractions are allowed');
  t.match(ok('{"addr":"h:1","maxAgeSeconds":0}'), { maxAgeSeconds: 0 });
  t.match(ok('{"Op":0,"Addr":"h:1","Metadata":{"anchors":2,"maxAgeSeconds":60}}'), { anchors: 2, maxAgeSeconds: 60, format: 'go' });
  t.notOk('maxAgeSeconds' in (ok('{"addr":"h:1"}') as object), 'absent: the pool default applies');
  t.equal(ok('{"addr":"h:1","maxAgeSeconds":-1}'), 'maxAgeSeconds: must be from 0 to 2147483 seconds');
  t.equal(ok('{"addr":"h:1","maxAgeSeconds":"300"}'), 'maxAgeSeconds: must be a number');
  t.equal(ok('{"Addr":"h:1","Metadata":{"maxAgeSeconds":3000000}}'), 'metadata.maxAgeSeconds: must be from 0 to 2147483 seconds');
});

t.test('zone: a native field, Metadata.zone (or a top-level Zone) in the Go form, @zone in text', async (t) => {
  const cases: [string, string, object][] = [
    ['native JSON', '{"addr":"10.0.0.5:50051","anchors":2,"zone":"eu-west-1a"}', { addr: '10.0.0.5:50051', anchors: 2, zone: 'eu-west-1a', format: 'json' }],
    ['native JSON, zone in metadata', '{"addr":"h:1","metadata":{"zone":"europe-west1-b","rack":"r1"}}', { zone: 'europe-west1-b', format: 'json', metadata: { rack: 'r1' } }],
    ['native JSON, the field wins over metadata', '{"addr":"h:1","zone":"z1","metadata":{"zone":"z2"}}', { zone: 'z1', format: 'json' }],
    ['Go Manager value, Metadata.zone', '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":{"anchors":2,"zone":"eu-west-1a"}}', { addr: '10.0.0.5:50051', anchors: 2, zone: 'eu-west-1a', format: 'go' }],
    ['Go value, top-level Zone', '{"Op":0,"Addr":"h:1","Zone":"us-east-1b"}', { zone: 'us-east-1b', format: 'go' }],
    ['Go value, top-level ZONE wins over Metadata.zone', '{"Addr":"h:1","ZONE":"top","Metadata":{"zone":"meta"}}', { zone: 'top', format: 'go' }],
    ['Go value, the Kubernetes topology label as the zone', '{"Addr":"h:1","Metadata":{"zone":"topology.kubernetes.io/zone:eu_1.a"}}', { zone: 'topology.kubernetes.io/zone:eu_1.a' }],
    ['text host:port@zone', '10.0.0.5:50051@eu-west-1a', { addr: '10.0.0.5:50051', anchors: 2, zone: 'eu-west-1a', format: 'text' }],
    ['text host:port#N@zone', '10.0.0.5:50051#4@eu-west-1a', { addr: '10.0.0.5:50051', anchors: 4, zone: 'eu-west-1a', format: 'text' }],
    ['text host:port#N-M@zone', '10.0.0.5:50051#2-8@eu-west-1a', { addr: '10.0.0.5:50051', anchors: 2, maxAnchors: 8, zone: 'eu-west-1a', format: 'text' }],
    ['text IPv6 with a zone', '[::1]:50051#3@a', { addr: '[::1]:50051', anchors: 3, zone: 'a' }],
    ['a zone of 128 characters', `h:1@${'z'.repeat(128)}`, { zone: 'z'.repeat(128) }],
  ];
  for (const [name, value, expected] of cases) {
    const result = parse(value);
    t.ok(result.ok, name);
    if (result.ok) t.match(result.endpoint, { key: 'services/echo/k', ...expected }, name);
  }
  for (const value of ['{"addr":"h:1"}', '{"Addr":"h:1","Metadata":{"anchors":2}}', 'h:1#2', '{"addr":"h:1","metadata":"v1"}']) {
    const result = parse(value);
    t.ok(result.ok && !('zone' in result.endpoint), `no zone: none in the entry (${value})`);
  }
});

t.test('an invalid zone is rejected with a reason naming zone, in every form', async (t) => {
  const rule = 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : / -';
  const cases: [string, string, string][] = [
    ['native: empty', '{"addr":"h:1","zone":""}', `zone: ${rule}`],
    ['native: a number', '{"addr":"h:1","zone":5}', `zone: ${rule}`],
    ['native: null', '{"addr":"h:1","zone":null}', `zone: ${rule}`],
    ['native: a space', '{"addr":"h:1","zone":"eu west"}', `zone: ${rule}`],
    ['native: 129 characters', `{"addr":"h:1","zone":"${'z'.repeat(129)}"}`, `zone: ${rule}`],
    ['native: non-ASCII', '{"addr":"h:1","zone":"zürich-1"}', `zone: ${rule}`],
    ['native: metadata.zone', '{"addr":"h:1","metadata":{"zone":"a,b"}}', `metadata.zone: ${rule}`],
    ['Go: Metadata.zone empty', '{"Op":0,"Addr":"h:1","Metadata":{"zone":""}}', `metadata.zone: ${rule}`],
    ['Go: Metadata.zone an object', '{"Op":0,"Addr":"h:1","Metadata":{"anchors":2,"zone":{"name":"a"}}}', `metadata.zone: ${rule}`],
    ['Go: top-level Zone with "@"', '{"Addr":"h:1","Zone":"a@b"}', `zone: ${rule}`],
    ['Go: a zone and another problem', '{"Addr":"h:1","Metadata":{"anchors":0,"zone":"#"}}', `metadata.anchors: must be between 1 and 64; metadata.zone: ${rule}`],
    ['text: empty after "@"', 'h:1@', `zone: ${rule} (got "" after "@")`],
    ['text: "#" after the zone', 'h:1@eu-1#2', `zone: ${rule} (got "eu-1#2" after "@")`],
    ['text: "," in the zone', 'h:1#2@a,b', `zone: ${rule} (got "a,b" after "@")`],
    ['text: 129 characters', `h:1@${'z'.repeat(129)}`, `zone: ${rule} (got 129 characters after "@")`],
    ['text: the address is checked first', 'h@eu-1', 'missing port in "h" (expected host:port)'],
    ['text: the zone follows the last "@", so another "@" is in the address', 'h:1@a@b', 'port "1@a" is not a number in "h:1@a"'],
    ['text: the anchors are checked first', 'h:1#0@eu-1', 'anchor count 0 must be between 1 and 64'],
  ];
  for (const [name, value, reason] of cases) {
    const result = parse(value);
    t.notOk(result.ok, name);
    if (!result.ok) t.equal(result.reason, reason, name);
  }
});

t.test('zoneSchema and isZoneName: one rule for values, targets, register() and the CLI', async (t) => {
  const good = ['a', 'eu-west-1a', 'europe-west1-b', 'topology.kubernetes.io/zone', 'AZ_1:rack.2', 'z'.repeat(128)];
  const bad: unknown[] = ['', ' ', 'eu west', 'a@b', 'a#b', 'a,b', 'zürich', 'z'.repeat(129), 'a\n', 5, null, undefined, ['a']];
  for (const zone of good) {
    t.ok(isZoneName(zone), `valid: ${zone.slice(0, 40)}`);
    t.ok(zoneSchema.safeParse(zone).success, `schema accepts: ${zone.slice(0, 40)}`);
  }
  for (const zone of bad) {
    t.notOk(isZoneName(zone), `invalid: ${JSON.stringify(zone)}`);
    t.equal(zoneSchema.safeParse(zone).error?.issues[0]?.message, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : / -', `schema rejects: ${JSON.stringify(zone)}`);
  }
});

t.test('sameEndpoint: a changed zone is a change', async (t) => {
  const at = (value: string) => {
    const result = parse(value);
    if (!result.ok) throw new Error(result.reason);
    return result.endpoint;
  };
  t.ok(sameEndpoint(at('{"addr":"h:1","zone":"a"}'), at('{"addr":"h:1","zone":"a"}')), 'same zone: same endpoint');
  t.notOk(sameEndpoint(at('{"addr":"h:1","zone":"a"}'), at('{"addr":"h:1","zone":"b"}')), 'another zone');
  t.notOk(sameEndpoint(at('{"addr":"h:1","zone":"a"}'), at('{"addr":"h:1"}')), 'zone removed');
  t.notOk(sameEndpoint(at('h:1#2'), at('h:1#2@a')), 'zone added (text)');
});

t.test('a unix socket address names no zone in the text form: an "@" in its path is part of the path', async (t) => {
  const parsed = parse('unix:/run/x@y.sock');
  t.ok(parsed.ok, 'valid');
  if (parsed.ok) t.match(parsed.endpoint, { addr: 'unix:/run/x@y.sock', zone: undefined });
});
