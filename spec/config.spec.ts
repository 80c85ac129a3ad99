import t from 'tap';
import { resolveSourceOptions } from '../lib/discovery/source-options.js';
import { createSource } from '../lib/discovery/create-source.js';
import { silentLogger } from '../lib/core/logger.js';

t.test('defaults for an etcd target', async (t) => {
  const resolved = resolveSourceOptions({ target: 'etcd:///services/echo/' });
  t.equal(resolved.etcd?.prefix, 'services/echo/');
  t.same(resolved.etcd?.hosts, ['127.0.0.1:2379']);
  t.same(resolved.limits, { defaultAnchors: 1, maxAnchorsPerKey: 64, maxValueBytes: 65536 });
  t.equal(resolved.etcd?.watchdogMillis, 30_000);
});

t.test('keepalive to etcd defaults to what etcd members and grpc-proxy accept', async (t) => {
  const etcd = resolveSourceOptions({ target: 'etcd:///svc/' }).etcd!;
  // grpc-go's default server policy (etcd grpc-proxy) refuses pings more often than every 5 min.
  t.equal(etcd.keepaliveTimeMillis, 300_000);
  t.equal(etcd.keepaliveTimeoutMillis, 20_000);
  // Half-open detection is the watchdog's job, well before a keepalive would notice.
  t.ok(etcd.watchdogMillis + etcd.dialTimeoutMillis < etcd.keepaliveTimeMillis);
  // Explicit values are still taken as given (the half-open fault scenario sets 60 s, specs less).
  const explicit = resolveSourceOptions({ target: 'etcd:///svc/', etcd: { keepaliveTimeMillis: 1000, keepaliveTimeoutMillis: 500 } }).etcd!;
  t.equal(explicit.keepaliveTimeMillis, 1000);
  t.equal(explicit.keepaliveTimeoutMillis, 500);
  t.throws(() => resolveSourceOptions({ target: 'etcd:///svc/', etcd: { keepaliveTimeMillis: 0 } }), { code: 'ANCHORPOOL_CONFIG', message: /etcd\.keepaliveTimeMillis/ });
});

t.test('etcd.prefix may replace the target, and is used exactly as typed', async (t) => {
  const resolved = resolveSourceOptions({ etcd: { prefix: '/services/echo', hosts: ['h:2379'] } });
  t.equal(resolved.etcd?.prefix, '/services/echo/');
  t.same(resolved.etcd?.hosts, ['h:2379']);
});

t.test('the #N of the target sets the default anchors', async (t) => {
  t.equal(resolveSourceOptions({ target: 'etcd:///svc/#3' }).limits.defaultAnchors, 3);
  t.equal(resolveSourceOptions({ target: 'etcd:///svc/', defaultAnchors: 2 }).limits.defaultAnchors, 2);
});

t.test('invalid options throw ConfigError listing each problem and its path', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{}, /give a target/],
    [{ target: 'etcd:///svc/', maxAnchorsPerKey: 0 }, /maxAnchorsPerKey: /],
    [{ target: 'etcd:///svc/', defaultAnchors: 1.5 }, /defaultAnchors: /],
    [{ target: 'etcd:///svc/', etcd: { hosts: [] } }, /etcd\.hosts: needs at least one host/],
    [{ target: 'etcd:///svc/', etcd: { hosts: ['nope'] } }, /etcd\.hosts\.0: missing port/],
    [{ target: 'etcd:///svc/', etcd: { watchdogMillis: 5 } }, /etcd\.watchdogMillis: /],
    [{ target: 'etcd:///svc/', etcd: { hostz: ['h:1'] } }, /hostz/],
    [{ target: 'etcd:///svc/', etcd: { auth: { username: '', password: 'x' } } }, /etcd\.auth\.username/],
    [{ target: 'etcd:///svc/', etcd: { credentials: { rootCertificate: 'pem' } } }, /etcd\.credentials\.rootCertificate: must be a Buffer/],
    [{ target: 'etcd:///svc/', logger: console.log }, /logger: must have debug/],
    [{ target: 'etcd:///svc/', etcd: { prefix: 'other/' } }, /differs from the target's prefix/],
    [{ target: 'etcd://a:1/svc/', etcd: { hosts: ['b:2'] } }, /give them in one place/],
    [{ target: 'pass:///h:1', etcd: {} }, /target is pass/],
    [{ target: 'etcd:///svc/', defaultAnchors: 9, maxAnchorsPerKey: 4 }, /exceeds maxAnchorsPerKey/],
  ];
  for (const [options, message] of cases) {
    t.throws(() => resolveSourceOptions(options as never), { code: 'ANCHORPOOL_CONFIG', message }, JSON.stringify(options));
  }
});

t.test('a password never appears in a config error', async (t) => {
  try {
    resolveSourceOptions({ target: 'etcd:///svc/', etcd: { auth: { username: 'u', password: 's3cret-pw' }, hosts: [] } } as never);
    t.fail('should throw');
  } catch (err) {
    t.notMatch((err as Error).message, /s3cret-pw/);
  }
});

t.test('createSource picks the implementation from the scheme', async (t) => {
  t.equal(createSource({ target: 'pass:///h:1', logger: silentLogger }).kind, 'static');
  t.equal(createSource({ target: 'etcd:///svc/', logger: silentLogger }).kind, 'etcd');
});
