// Smoke test of the test harness itself: real etcd, etcdctl, the TCP proxy.

import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { etcdctl, leaderOf, startEtcd, waitFor, type EtcdCluster } from '../testkit/tap-etcd.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';

/** Whether a process with this pid exists (process.kill(pid, 0) throws when it does not). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopAndCheck(t: Test, cluster: EtcdCluster, extraPids: number[] = []): Promise<void> {
  const pids = [...new Set([...cluster.members.map((m) => m.pid), ...extraPids])];
  await cluster.stop();
  for (const pid of pids) t.notOk(pidExists(pid), `etcd pid ${pid} is gone after stop()`);
  t.notOk(fs.existsSync(cluster.dir), `cluster dir ${cluster.dir} removed after stop()`);
  t.notOk(cluster.members.some((m) => m.running), 'no member reports running');
}

/** A TCP echo server on 127.0.0.1 for proxy tests. */
async function startEchoServer(t: Test): Promise<net.AddressInfo> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return server.address() as net.AddressInfo;
}

/** Connect a raw client and collect everything it receives. */
async function connectClient(t: Test, port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  let received = '';
  const errors: Error[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (received += d));
  socket.on('error', (err) => errors.push(err));
  await once(socket, 'connect');
  t.teardown(() => {
    socket.destroy();
  });
  return {
    socket,
    received: () => received,
    errors,
    closed: () => socket.closed,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('single member: etcdctl put/get, then a proxy with cut/resume', async (t) => {
  const cluster = await startEtcd(t);
  t.equal(cluster.members.length, 1);
  t.match(cluster.endpoints[0], /^http:\/\/127\.0\.0\.1:\d+$/);
  t.match(cluster.hosts[0], /^127\.0\.0\.1:\d+$/);
  const member = cluster.members[0]!;
  t.equal(member.name, 'n1');
  t.ok(member.running, 'member is running');
  t.ok(pidExists(member.pid), 'member pid exists');
  t.match(fs.readFileSync(`/proc/${member.pid}/cmdline`, 'utf8'), /etcd/, 'recorded pid is etcd itself');
  t.ok(fs.existsSync(member.logFile), 'member log file exists');

  const put = await etcdctl(cluster, 'put', 'a', '1');
  t.equal(put.stdout.trim(), 'OK');
  const get = await etcdctl(cluster, 'get', 'a', '--print-value-only');
  t.equal(get.stdout.trim(), '1', 'get a returns 1');

  // A failing command rejects with stderr in the message, unless allowFail.
  await t.rejects(etcdctl(cluster, 'no-such-command'), /etcdctl .*no-such-command.*failed/);
  const failed = await etcdctl(cluster, 'no-such-command', { allowFail: true });
  t.not(failed.code, 0, 'allowFail resolves with the non-zero exit code');

  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: member.clientPort });
  t.teardown(() => proxy.close());
  t.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const viaProxy = (allowFail: boolean) =>
    etcdctl(cluster, 'get', 'a', '--print-value-only', '--command-timeout=1s', '--dial-timeout=1s', {
      endpoints: proxy.url,
      allowFail,
      timeoutMs: 8000,
    });

  const ok1 = await viaProxy(false);
  t.equal(ok1.stdout.trim(), '1', 'get through the proxy works');

  proxy.cut();
  const cutRes = await viaProxy(true);
  t.not(cutRes.code, 0, `etcdctl through a cut proxy fails (stderr: ${cutRes.stderr.trim()})`);
  t.equal(cutRes.stdout.trim(), '', 'no value through a cut proxy');
  t.equal(proxy.connectionCount(), 0, 'no connection pairs while cut');

  proxy.resume();
  const ok2 = await viaProxy(false);
  t.equal(ok2.stdout.trim(), '1', 'get through the proxy works again after resume()');

  await proxy.close();
  await proxy.close(); // idempotent
  await stopAndCheck(t, cluster);
  await cluster.stop(); // idempotent
});

t.test('proxy pause(): existing connections freeze, new ones flow; cut() resets', async (t) => {
  const echo = await startEchoServer(t);
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: echo.port });
  t.teardown(() => proxy.close());

  const a = await connectClient(t, proxy.port);
  a.socket.write('hello');
  await waitFor(() => a.received() === 'hello', { timeoutMs: 2000, what: 'echo of "hello"' });
  t.equal(proxy.connectionCount(), 1, 'one pair');

  proxy.pause();
  a.socket.write('frozen');
  await sleep(300);
  t.equal(a.received(), 'hello', 'nothing arrives through a paused connection within 300 ms');
  t.notOk(a.closed(), 'paused connection is not closed');
  t.same(a.errors, [], 'no error on the paused connection');

  // A new connection made while paused works.
  const b = await connectClient(t, proxy.port);
  b.socket.write('fresh');
  await waitFor(() => b.received() === 'fresh', { timeoutMs: 2000, what: 'echo on a connection made while paused' });
  t.equal(a.received(), 'hello', 'the frozen connection is still frozen');
  t.equal(proxy.connectionCount(), 2, 'two pairs');

  proxy.resume();
  await waitFor(() => a.received() === 'hellofrozen', { timeoutMs: 2000, what: 'bytes written while paused to arrive after resume' });
  t.pass('bytes written while paused arrive after resume()');

  // cut(): existing connections are reset, new ones refused until resume().
  proxy.cut();
  await waitFor(() => a.closed() && b.closed(), { timeoutMs: 2000, what: 'connections to be reset by cut()' });
  t.ok(
    a.errors.some((e) => (e as NodeJS.ErrnoException).code === 'ECONNRESET'),
    `client sees ECONNRESET after cut() (got ${a.errors.map((e) => (e as NodeJS.ErrnoException).code).join(',') || 'none'})`,
  );
  const c = net.connect({ host: '127.0.0.1', port: proxy.port });
  c.on('data', () => t.fail('no data on a refused connection'));
  const [cErr] = await Promise.race([once(c, 'error'), once(c, 'close')]);
  c.destroy();
  t.ok(c.destroyed, `new connection while cut is dropped (${(cErr as NodeJS.ErrnoException)?.code ?? 'closed'})`);
  t.equal(proxy.connectionCount(), 0, 'no pairs after cut()');

  proxy.resume();
  const d = await connectClient(t, proxy.port);
  d.socket.write('again');
  await waitFor(() => d.received() === 'again', { timeoutMs: 2000, what: 'echo after resume from cut' });
  t.pass('new connections work after resume()');
});

t.test('three members: kill the leader, writes continue, restart it', async (t) => {
  const cluster = await startEtcd(t, { members: 3 });
  t.equal(cluster.members.length, 3);
  t.same(
    cluster.members.map((m) => m.name),
    ['m1', 'm2', 'm3'],
  );
  t.equal(new Set(cluster.endpoints).size, 3, 'distinct endpoints');

  await etcdctl(cluster, 'put', 'before', 'x');
  const leader = await waitFor(() => leaderOf(cluster), { timeoutMs: 5000, what: 'a leader' });
  t.ok(cluster.members.includes(leader), `leader is a member (${leader.name})`);
  const oldPid = leader.pid;

  await leader.kill();
  t.notOk(leader.running, 'killed leader is not running');
  t.notOk(pidExists(oldPid), 'killed leader pid is gone');
  t.equal(leader.lastExit?.signal, 'SIGKILL');

  const rest = cluster.members.filter((m) => m !== leader).map((m) => m.clientUrl);
  const started = Date.now();
  await waitFor(
    async () =>
      (
        await etcdctl(cluster, 'put', 'after', 'y', '--command-timeout=1s', '--dial-timeout=1s', {
          endpoints: rest,
          allowFail: true,
          timeoutMs: 5000,
        })
      ).code === 0,
    { timeoutMs: 10_000, intervalMs: 200, what: 'a put to succeed after the leader was killed' },
  );
  t.pass(`put succeeded on the remaining members ${Date.now() - started} ms after killing the leader`);
  const newLeader = await waitFor(() => leaderOf(cluster), { timeoutMs: 5000, what: 'a new leader' });
  t.not(newLeader, leader, `a different member leads now (${newLeader.name})`);

  await leader.start();
  t.ok(leader.running, 'restarted member is running');
  t.not(leader.pid, oldPid, 'restarted member has a new pid');
  const got = await waitFor(
    async () => {
      const r = await etcdctl(cluster, 'get', 'after', '--print-value-only', {
        endpoints: leader.clientUrl,
        allowFail: true,
      });
      return r.stdout.trim() === 'y' ? r.stdout.trim() : null;
    },
    { timeoutMs: 5000, what: 'the restarted member to serve the write made while it was down' },
  );
  t.equal(got, 'y', 'restarted member caught up');

  await stopAndCheck(t, cluster, [oldPid]);
});

t.test('waitFor names what it waited for on timeout', async (t) => {
  await t.rejects(
    waitFor(() => false, { timeoutMs: 150, intervalMs: 20, what: 'the impossible' }),
    /timed out after \d+ ms .*waiting for the impossible/,
  );
  await t.rejects(
    waitFor(
      () => {
        throw new Error('boom');
      },
      { timeoutMs: 100, intervalMs: 20, what: 'x' },
    ),
    /waiting for x; last error: boom/,
  );
  t.equal(await waitFor(() => 42, { what: 'a number' }), 42);
});
