import t from 'tap';
import { parseAddress } from '../lib/discovery/address.js';

t.test('accepted address forms', async (t) => {
  const cases: [string, object][] = [
    ['10.0.0.5:50051', { kind: 'tcp', host: '10.0.0.5', port: 50051 }],
    ['backend-1.svc.cluster.local:443', { kind: 'tcp', host: 'backend-1.svc.cluster.local', port: 443 }],
    ['localhost:1', { kind: 'tcp', host: 'localhost', port: 1 }],
    ['host:65535', { kind: 'tcp', port: 65535 }],
    ['[::1]:50051', { kind: 'tcp', host: '::1', port: 50051 }],
    ['[2001:db8::7]:8080', { kind: 'tcp', host: '2001:db8::7', port: 8080 }],
    ['unix:/run/echo.sock', { kind: 'unix', path: '/run/echo.sock' }],
    ['unix:///run/echo.sock', { kind: 'unix', path: '/run/echo.sock' }],
    ['unix:relative.sock', { kind: 'unix', path: 'relative.sock' }],
  ];
  for (const [input, expected] of cases) {
    const result = parseAddress(input);
    t.ok(result.ok, `${input} is accepted`);
    if (result.ok) t.match(result.value, { ...expected, address: input }, input);
  }
});

t.test('rejected address forms say why', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['10.0.0.5', /missing port/],
    ['10.0.0.5:', /missing port/],
    [':50051', /missing host/],
    ['host:0', /out of range/],
    ['host:65536', /out of range/],
    ['host:-1', /not a number/],
    ['host:80x', /not a number/],
    ['host:+80', /not a number/],
    ['::1:50051', /must be in brackets/],
    ['[::1]', /missing port/],
    ['[::1]50051', /missing port/],
    ['[10.0.0.1]:80', /not an IPv6 address/],
    ['[::1:80', /unclosed/],
    ['999.1.1.1:80', /not a valid hostname or IPv4/],
    ['bad_host!:80', /not a valid hostname/],
    ['-lead.example:80', /not a valid hostname/],
    ['a..b:80', /not a valid hostname/],
    ['host name:80', /whitespace/],
    ['unix:', /no path/],
    [`${'a'.repeat(1100)}:80`, /longer than/],
  ];
  for (const [input, reason] of cases) {
    const result = parseAddress(input);
    t.notOk(result.ok, `${JSON.stringify(input.slice(0, 40))} is rejected`);
    if (!result.ok) t.match(result.reason, reason, input.slice(0, 40));
  }
});
