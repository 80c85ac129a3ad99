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

t.test('pass:/// entries may name their zone after "@"', async (t) => {
  t.same(parse('pass:///127.0.0.1:5001#2@a,127.0.0.1:5002@b,127.0.0.1:5003#1-4@eu-west-1a,127.0.0.1:5004'), {
    scheme: 'pass',
    entries: [
      { addr: '127.0.0.1:5001', anchors: 2, zone: 'a' },
      { addr: '127.0.0.1:5002', anchors: 1, zone: 'b' },
      { addr: '127.0.0.1:5003', anchors: 1, maxAnchors: 4, zone: 'eu-west-1a' },
      { addr: '127.0.0.1:5004', anchors: 1 },
    ],
  });
  const first = (target: string) => {
    const parsed = parse(target);
    return parsed.scheme === 'pass' ? parsed.entries[0] : undefined;
  };
  t.equal(first('pass:///h:1@a')?.zone, 'a');
  t.notOk('zone' in first('pass:///h:1#2')!, 'no zone: no zone field');
  t.same(parse('pass:///[::1]:1#3@topology.kubernetes.io/zone'), { scheme: 'pass', entries: [{ addr: '[::1]:1', anchors: 3, zone: 'topology.kubernetes.io/zone' }] }, 'a zone may hold "/" and ":"');
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
    ['pass:///h:1@', /entry 1 \("h:1@"\): zone: must be 1 to 128 characters of A-Z a-z 0-9 \. _ : \/ - \(got "" after "@"\)/],
    ['pass:///h:1#2@a,h:2@eu west', /entry 2 \("h:2@eu west"\): zone: must be 1 to 128 characters/],
    ['pass:///h:1@a#2', /entry 1 \("h:1@a#2"\): zone: .* \(got "a#2" after "@"\)/],
  ];
  for (const [target, message] of cases) {
    t.throws(() => parse(target), { code: 'ANCHORPOOL_INVALID_TARGET', message }, target);
  }
});

t.test('normalizePrefix keeps svc/echo from matching svc/echo_other', async (t) => {
  t.equal(normalizePrefix('svc/echo'), 'svc/echo/');
  t.equal(normalizePrefix('svc/echo/'), 'svc/echo/');
});
