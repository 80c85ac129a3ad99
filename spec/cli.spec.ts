// `anchorpool endpoints` against a real etcd: the table, JSON, exit codes, usage errors.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../lib/cli/main.js';
import type { CommandIo } from '../lib/cli/endpoints-command.js';
import { etcdctl, startEtcd } from './support/etcd.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';

const cluster = await startEtcd(t);
const etcdFlag = cluster.hosts.join(',');
await etcdctl(cluster, 'put', 'cli/echo/b1', '{"addr":"10.0.0.5:50051","anchors":4}');
await etcdctl(cluster, 'put', 'cli/echo/b2', '10.0.0.6:50051');
await etcdctl(cluster, 'put', 'cli/echo/bad', '{"addr":"10.0.0.7"}');

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = { out: (l) => out.push(l), err: (l) => err.push(l), env, interrupted: Promise.resolve() };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('prints every key with address and anchors, and the invalid keys with their reason', async (t) => {
  const { code, out } = await run(['endpoints', '--etcd', etcdFlag, '--prefix', 'cli/echo/']);
  t.equal(code, 1, 'exit 1 because a value is invalid');
  t.match(out, /revision \d+: 2 endpoint\(s\), 1 invalid/);
  t.match(out, /cli\/echo\/b1\s+10\.0\.0\.5:50051\s+4\s+json/);
  t.match(out, /cli\/echo\/b2\s+10\.0\.0\.6:50051\s+1\s+text/);
  t.match(out, /INVALID cli\/echo\/bad: addr: missing port/);
});

t.test('--json, and ETCDCTL_ENDPOINTS as the default hosts', async (t) => {
  const { code, out } = await run(['endpoints', '--prefix', 'cli/echo/', '--json'], { ETCDCTL_ENDPOINTS: etcdFlag });
  t.equal(code, 1);
  const parsed = JSON.parse(out) as { endpoints: { key: string; anchors: number }[]; invalid: { key: string }[]; revision: number };
  t.same(parsed.endpoints.map((e) => [e.key, e.anchors]), [['cli/echo/b1', 4], ['cli/echo/b2', 1]]);
  t.same(parsed.invalid.map((r) => r.key), ['cli/echo/bad']);
  t.ok(parsed.revision > 0);
});

t.test('exit 0 when every value is valid', async (t) => {
  await etcdctl(cluster, 'put', 'cli/clean/a', '10.0.0.1:1');
  const { code } = await run(['endpoints', '--etcd', etcdFlag, '--prefix', 'cli/clean']);
  t.equal(code, 0);
});

t.test('exit 1 with a clear message when etcd is unreachable', async (t) => {
  const port = await freePort();
  const { code, err } = await run(['endpoints', '--etcd', `127.0.0.1:${port}`, '--prefix', 'x/', '--timeout', '500']);
  t.equal(code, 1);
  t.match(err, new RegExp(`no snapshot of prefix "x/" from etcd at 127\\.0\\.0\\.1:${port} within 500 ms`));
});

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  const cases: [string[], RegExp][] = [
    [['endpoints', '--bogus'], /Unknown option '--bogus'/],
    [['endpoints'], /--prefix \(or --target\) is required/],
    [['endpoints', '--prefix', 'a/', '--target', 'etcd:///a/'], /not both/],
    [['endpoints', '--prefix', 'a/', '--timeout', 'soon'], /--timeout must be a positive integer/],
    [['endpoints', '--prefix', 'a/', '--user', 'root'], /--password-file FILE or ANCHORPOOL_ETCD_PASSWORD/],
    [['endpoints', '--prefix', 'a/', '--cert', 'c.pem'], /--cert and --key need --cacert/],
    [['endpoints', '--prefix', 'a/', '--etcd', 'nope'], /etcd\.hosts\.0: missing port/],
    [['endpoints', '--target', 'dns:///x'], /unknown scheme "dns"/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [argv, message] of cases) {
    const { code, err } = await run(argv);
    t.equal(code, 2, `${argv.join(' ')} exits 2`);
    t.match(err, message, argv.join(' '));
  }
});

t.test('the password comes from a file and never shows in output', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anchorpool-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'pw');
  writeFileSync(file, 'hunter2-secret\n');
  // This etcd has auth disabled, so etcd refuses to authenticate: a config error, reported at once.
  const startedAt = Date.now();
  const { code, out, err } = await run(['endpoints', '--etcd', etcdFlag, '--prefix', 'cli/clean/', '--user', 'root', '--password-file', file]);
  t.equal(code, 1);
  t.match(err, /refused access to "cli\/clean\/".*authentication is not enabled/);
  t.ok(Date.now() - startedAt < 4000, 'an auth error does not wait for the timeout');
  t.notMatch(out + err, /hunter2/);
});

t.test('the installed bin runs the same command', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/anchorpool.js', import.meta.url));
  const result = spawnSync(process.execPath, [bin, 'endpoints', '--etcd', etcdFlag, '--prefix', 'cli/clean/'], { encoding: 'utf8' });
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /cli\/clean\/a\s+10\.0\.0\.1:1/);
  const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: anchorpool <command>/);
});
