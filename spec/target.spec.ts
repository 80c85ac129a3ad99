import t from 'tap';
import { parseTarget, normalizePrefix } from '../lib/discovery/target.js';
import { DEFAULT_LIMITS } from '../lib/discovery/endpoint-entry.js';

const parse = (target: string) => parseTarget(target, DEFAULT_LIMITS);

t.test('etcd targets: the prefix is the URI path as gRPC parses it', async (t) => {
  t.same(parse('etcd:///services/echo/'), { scheme: 'etcd', prefix: 'services/echo/' });
  t.same(parse('etcd:////services/echo/'), { scheme: 'etcd', prefix: '/services/echo/' }, 'a fourth slash keeps a leading "/"');
  t.same(parse('etcd:///svc/echo'), { scheme: 'etcd', prefix: 'svc/echo/' }, 'a missing trailing "/" is added');
  t.same(parse('etcd:///svc/echo#4'), { scheme: 'etcd', prefix: 'svc/echo/', defaultAnchors: 4 }, '#N sets the default anchors');
  t.same(parse('etcd://10.0.0.1:2379,10.0.0.2:2379/svc/'), {
    scheme: 'etcd',
    prefix: 'svc/',
    hosts: ['10.0.0.1:2379', '10.0.0.2:2379'],
  }, 'the authority lists the etcd hosts');
});

t.test('static pass:/// targets', async (t) => {
  t.same(parse('pass:///127.0.0.1:50051#2,127.0.0.1:50052'), {
    scheme: 'pass',
    entries: [
      { addr: '127.0.0.1:50051', anchors: 2 },
      { addr: '127.0.0.1:50052', anchors: 1 },
    ],
  });
  t.same(parse('pass:///[::1]:1#3'), { scheme: 'pass', entries: [{ addr: '[::1]:1', anchors: 3 }] });
});

t.test('bad targets throw InvalidTargetError naming the problem', async (t) => {
  const cases: [string, RegExp][] = [
    ['services/echo', /expected etcd:\/\/\[hosts\]\/<prefix>/],
    ['dns:///services/echo/', /unknown scheme "dns"/],
    ['etcd:///', /expected/],
    ['etcd:////', /prefix is empty/],
    ['etcd:///#4', /prefix is empty/],
    ['etcd:///svc/#0', /integer from 1 to 64/],
    ['etcd:///svc/#x', /integer from 1 to 64/],
    ['etcd://nohostport/svc/', /etcd host "nohostport": missing port/],
    ['pass://auth/h:1', /takes no authority/],
    ['pass:///h:1,h', /entry 2 \("h"\): missing port/],
    ['pass:///h:1#99', /between 1 and 64/],
  ];
  for (const [target, message] of cases) {
    t.throws(() => parse(target), { code: 'ANCHORPOOL_INVALID_TARGET', message }, target);
  }
});

t.test('normalizePrefix keeps svc/echo from matching svc/echo_other', async (t) => {
  t.equal(normalizePrefix('svc/echo'), 'svc/echo/');
  t.equal(normalizePrefix('svc/echo/'), 'svc/echo/');
});
