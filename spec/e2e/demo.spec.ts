// The demo as a user runs it: the compiled demo in its own process (not a terminal, so
// it prints plain snapshots), with ANCHORPOOL_DEMO_REPORT_PIDS=1 so it names the etcd
// and backend processes it starts. Checked: the exit code, every etcdctl command (each
// value with its zone) and health check it prints, the zone of every anchor and backend
// row, leases on every anchor of every backend, server-side connections that follow the
// anchors, calls that stay in the pool's zone a while its backends serve, leave it in part
// when one of its two backends flips to NOT_SERVING and wholly when both do (no lease on
// them meanwhile, and no failed call), and come back, a backend failing
// every call that outlier detection ejects (no lease on it meanwhile, its failed calls
// the only errors of the run) and returns, a key that may grow (maxAnchors) for which a
// burst makes the pool open extra anchors (marked extra in the chart, their connections
// counted by the server) that drain back after it, and that afterwards none of its processes and
// not its etcd data dir is left — after a normal end, a Ctrl-C in a terminal (SIGINT to
// the whole process group), a SIGTERM during startup, and Ctrl-C in --interactive.
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main } from '../../lib/cli/main.js';
import type { CommandIo } from '../../lib/cli/command-io.js';

const DEMO = fileURLToPath(new URL('../../scripts/demo.js', import.meta.url));

interface Demo {
  child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMillis?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The demo's processes as it reported them (`pids: name=pid`), and its etcd data dir. */
function startedBy(output: string): { pids: Map<string, number>; dataDir: string | undefined } {
  const pids = new Map<string, number>();
  for (const [, name, pid] of output.matchAll(/^pids: (\w+)=(\d+)$/gm)) pids.set(name!, Number(pid));
  return { pids, dataDir: /data dir (\/\S+)\)/.exec(output)?.[1] };
}

/** Whether `pid` is still a live (not zombie) process running etcd or an echo server. */
function stillRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return /etcd|echo-server/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live processes whose command line mentions `needle` (the data dir, the etcd URL). */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function startDemo(args: string[]): Demo {
  // Its own process group, so a test can signal it the way a terminal's Ctrl-C does.
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ANCHORPOOL_DEMO_REPORT_PIDS: '1', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    // Only after a failure is anything left: kill it, so one failing test does not leak processes.
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    const { pids, dataDir } = startedBy(output);
    for (const pid of pids.values()) if (stillRunning(pid)) process.kill(pid, 'SIGKILL');
    if (dataDir?.startsWith('/tmp/anchorpool-etcd-')) rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    child,
    output: () => output,
    exited,
    async waitFor(pattern, timeoutMillis = 20_000) {
      const deadline = Date.now() + timeoutMillis;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${pattern} in the demo's output:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

async function exitWithin(demo: Demo, millis: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the demo did not exit within ${millis} ms:\n${demo.output()}`)), millis)));
  try {
    return await Promise.race([demo.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Everything the demo reported starting is gone, and so is its etcd data dir. */
function assertNothingLeft(t: Test, output: string, expectedNames: string[]): void {
  const { pids, dataDir } = startedBy(output);
  t.same([...pids.keys()].sort(), [...expectedNames].sort(), 'the demo reported the pids of etcd and every backend');
  for (const [name, pid] of pids) t.notOk(stillRunning(pid), `${name} (pid ${pid}) is gone`);
  t.ok(dataDir, 'the demo printed its etcd data dir');
  if (dataDir === undefined) return;
  t.notOk(existsSync(dataDir), `${dataDir} was deleted`);
  t.same(processesMentioning(dataDir), [], 'no process uses the data dir');
  const etcdUrl = /etcd on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
  if (etcdUrl) t.same(processesMentioning(`--endpoints=${etcdUrl}`), [], 'no etcdctl is left running');
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('a short run: real etcdctl commands, health checks, zones and a zone flip, an outlier ejection, extra anchors, leases on every anchor, and nothing left behind', async (t) => {
  const demo = startDemo([DEMO, '--duration', '8']);
  const { code } = await exitWithin(demo, 50_000);
  const out = demo.output();
  t.equal(code, 0, 'exit code 0');

  const address = (name: string): string => new RegExp(`backend ${name} on (127\\.0\\.0\\.1:\\d+) \\(pid \\d+\\): grpc\\.health\\.v1\\.Health/Check → SERVING`).exec(out)?.[1] ?? `<${name}>`;
  const [alpha, beta, gamma, delta] = ['alpha', 'beta', 'gamma', 'delta'].map(address) as [string, string, string, string];
  for (const [name, addr] of Object.entries({ alpha, beta, gamma, delta })) t.notMatch(addr, /^</, `a SERVING health check of ${name} is printed`);

  const etcd = /etcd on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  const commands = [
    `put services/echo/alpha '{"addr":"${alpha}","anchors":3,"zone":"a"}'`,
    `put services/echo/beta '{"Op":0,"Addr":"${beta}","Metadata":{"anchors":2,"zone":"b"}}'`,
    `put services/echo/gamma '${gamma}#1@c'`,
    `put services/echo/delta '{"addr":"${delta}","anchors":2,"zone":"a"}'`,
    `put services/echo/gamma '${gamma}#4@c'`,
    'del services/echo/beta',
    `put services/echo/delta '{"addr":"${delta}","anchors":2,"maxAnchors":4,"zone":"a"}'`,
  ];
  const order = commands.map((c) => out.indexOf(`$ etcdctl --endpoints=${etcd} ${c}\n`));
  for (const [i, c] of commands.entries()) t.ok(order[i]! >= 0, `printed: etcdctl ${c}`);
  t.same([...order].sort((a, b) => a - b), order, 'in the order they ran');

  // Zones: every anchor and backend row names its backend's zone; the pool is in zone a, and its calls stay there while alpha and delta serve.
  const zones: Record<string, string> = { alpha: 'a', beta: 'b', gamma: 'c', delta: 'a' };
  const anchorZones = [...out.matchAll(/^ {2}anchor services\/echo\/(\w+)#\d+\s+\S+\s+zone (\S+)\s/gm)];
  t.ok(anchorZones.length > 0, 'snapshots show the zone of each anchor');
  t.same(anchorZones.filter(([, name, zone]) => zones[name!] !== zone).map((m) => m[0]), [], 'each anchor row shows its backend\'s zone');
  for (const [name, addr] of Object.entries({ alpha, beta, gamma, delta })) {
    t.match(out, new RegExp(`^ {2}backend ${name} ${escape(addr)} \\(zone ${zones[name]}\\): `, 'm'), `the backend rows show ${name} in zone ${zones[name]}`);
  }
  t.match(out, /pool on etcd:\/\/\/services\/echo\/ in zone a ready/, 'the pool runs in zone a');

  // Between the gamma change and the del, zone a's backends report NOT_SERVING, delta and then alpha too, and then SERVING again.
  const health = (name: string, status: string, why: string): number => out.search(new RegExp(`t=\\d+\\.\\ds {2}backend ${name}: health → ${status} \\(.*${why}\\)\n`));
  const deltaOut = health('delta', 'NOT_SERVING', 'zone a keeps alpha\'s share of the calls, the rest spills to the other zones');
  const flipOut = health('alpha', 'NOT_SERVING', 'zone a has no anchor in rotation left: every call leaves it');
  const flipBack = health('alpha', 'SERVING', 'its anchors rejoin the rotation');
  const deltaBack = health('delta', 'SERVING', 'its anchors rejoin the rotation: zone a is whole again');
  t.ok(deltaOut >= 0 && flipOut >= 0 && flipBack >= 0 && deltaBack >= 0, 'all four health flips are printed');
  t.ok(order[4]! < deltaOut && deltaOut < flipOut && flipOut < flipBack && flipBack < deltaBack && deltaBack < order[5]!, 'after the gamma change, before the del: delta out, alpha out, alpha back, delta back');
  const beforeFlips = out.slice(0, deltaOut);
  const oneOut = out.slice(deltaOut, flipOut);
  const during = out.slice(flipOut, flipBack);
  const after = out.slice(flipBack);
  t.match(beforeFlips, /^ {2}zones: the pool is in zone a, mode local; calls by zone over the last second: a 100% · b 0% · c 0%$/m, 'a snapshot shows every call in zone a');
  for (const i of [0, 1, 2]) {
    const anchor = `services/echo/alpha#${i} \\(${escape(alpha)}\\)`;
    t.match(during, new RegExp(`pool: ${anchor} health SERVING → NOT_SERVING: out of rotation`), `the pool takes alpha#${i} out of rotation`);
    t.match(after, new RegExp(`pool: ${anchor} health NOT_SERVING → SERVING: back in rotation`), `and brings it back`);
    t.match(during, new RegExp(`^ {2}anchor services/echo/alpha#${i}\\s+\\S+\\s+zone a\\s+READY\\s+NOT_SERVING\\s+[\\d,]+ leases/s {2}\\(out of rotation\\)$`, 'm'), `a snapshot shows alpha#${i} NOT_SERVING`);
  }
  for (const i of [0, 1]) {
    t.match(oneOut, new RegExp(`pool: services/echo/delta#${i} \\(${escape(delta)}\\) health SERVING → NOT_SERVING: out of rotation`), `the pool takes delta#${i} out of rotation`);
    t.match(out.slice(deltaBack), new RegExp(`pool: services/echo/delta#${i} \\(${escape(delta)}\\) health NOT_SERVING → SERVING: back in rotation`), `and brings it back`);
  }
  // The pool's routing after each flip (pool.stats().zones): zone a keeps its 3 of 5 slots' share, then has none, then all.
  t.match(oneOut, /pool\.stats\(\)\.zones: mode spill \(.*\); zone a has 3 of 5 anchors in rotation; shares now a 60% · b 13% · c 27%\n/, 'one out: zone a keeps 60%, b and c take the rest by their anchors');
  t.match(during, /pool\.stats\(\)\.zones: mode panic \(.*\); zone a has 0 of 5 anchors in rotation; shares now a 0% · b 33% · c 67%\n/, 'both out: every call leaves zone a');
  t.match(after, /pool\.stats\(\)\.zones: mode local \(every call stays in zone a\); zone a has 5 of 5 anchors in rotation; shares now a 100% · b 0% · c 0%\n/, 'both back: every call stays in zone a');
  t.match(oneOut, /^ {2}zones: the pool is in zone a, mode spill; /m, 'a snapshot shows the spill');
  t.match(during, /^ {2}zone a\s+alpha, delta\s+0 of 5 anchors in rotation\s+share\s+0%\s+0 leases\/s$/m, 'a snapshot shows zone a without leases');
  t.match(during, /^ {2}zones: the pool is in zone a, mode panic; calls by zone over the last second: a 0% · b \d+% · c \d+%$/m, 'and no call in zone a over its last second');
  // From the pool's own counters (pool.stats().zones picks), read at the start and end of each state: exact, not timed.
  const num = (text: string | undefined): number => Number(text?.replaceAll(',', ''));
  const one = /while delta was NOT_SERVING \(\d+\.\d s\), zone a took (\d+)% of the ([\d,]+) leases: a \d+% \(([\d,]+), all on alpha\), b \d+% \(([\d,]+)\), c \d+% \(([\d,]+)\)\n/.exec(oneOut);
  t.ok(one, 'while delta was out, zone a\'s leases were all on alpha');
  t.ok(num(one?.[3]) > 0 && num(one?.[4]) > 0 && num(one?.[5]) > 0, `and part of the calls left zone a for b and c (${one?.[0].trim()})`);
  t.ok(num(one?.[1]) >= 40 && num(one?.[1]) <= 80, `zone a kept about its 60% (${one?.[1]}%)`);
  const both = /while delta and alpha were both NOT_SERVING \(\d+\.\d s\), zone a took 0 of the ([\d,]+) leases: a 0% \(0\), b \d+% \(([\d,]+)\), c \d+% \(([\d,]+)\)\n/.exec(during);
  t.ok(both, 'no lease in zone a while both were NOT_SERVING');
  t.ok(num(both?.[2]) > 0 && num(both?.[3]) > 0, 'while zones b and c served the calls');
  t.match(after, /since both serve again \(\d+\.\d s\), zone a took 100% of the [\d,]+ leases: a 100% \([\d,]+\), b 0% \(0\), c 0% \(0\)\n/, 'and every call is back in zone a');
  t.match(out, /\d\d:\d\d:\d\d\.\d{3} t=\d+\.\ds {2}\$ etcdctl .* del services\/echo\/beta/, 'mid-run commands carry a timestamp');

  // After the del, delta fails every call: the pool ejects it, delta answers again, and after the ejection time the pool returns it.
  const deltaKey = `services/echo/delta \\(${escape(delta)}\\)`;
  const failOn = out.search(/t=\d+\.\ds {2}backend delta: failing → on \(every Echo call gets UNAVAILABLE/);
  const ejected = out.search(
    new RegExp(`t=\\d+\\.\\ds {2}pool: ${deltaKey} ejected after 5 failed calls in a row \\(ejection 1\\): out of rotation until [\\d:.]+, [\\d.]+ s \\(baseEjectionTimeMillis 2000 for the demo; the default is 30 s\\)\n`),
  );
  const failOff = out.search(/t=\d+\.\ds {2}backend delta: failing → off \(it answers again; the pool keeps it ejected until [\d:.]+\)\n/);
  const returned = out.search(new RegExp(`t=\\d+\\.\\ds {2}pool: ${deltaKey} returned after its ejection: back in rotation\n`));
  t.ok(failOn >= 0 && ejected >= 0 && failOff >= 0 && returned >= 0, 'the failing switch, the ejection and the return are printed');
  t.ok(order[5]! < failOn && failOn < ejected && ejected < failOff && failOff < returned, 'after the del: failing on, ejected, failing off, returned');
  t.equal(out.match(/ ejected after /g)?.length, 1, 'the pool ejected once (nothing but delta)');
  const whileEjected = out.slice(ejected, returned);
  t.match(whileEjected, /pool\.stats\(\)\.zones: mode spill \(.*\); zone a has 3 of 5 anchors in rotation; shares now a 60% · c 40%\n/, 'while delta is ejected, part of the calls leave zone a for c');
  for (const i of [0, 1]) {
    t.match(whileEjected, new RegExp(`^ {2}anchor services/echo/delta#${i}\\s+\\S+\\s+zone a\\s+READY\\s+SERVING\\s+0 leases/s {2}\\(ejected\\)$`, 'm'), `a snapshot shows delta#${i} ejected, without leases`);
  }
  // From the pool's lease counters, read in its endpoint-ejected and endpoint-returned events: exact, not timed.
  const [, ejectedOthers] = /while ejected \(\d+\.\d s\), delta's 2 anchors took 0 leases; the others took ([\d,]+)\n/.exec(out.slice(returned)) ?? [];
  t.ok(ejectedOthers !== undefined, 'no lease on delta while it was ejected');
  t.ok(Number(ejectedOthers?.replaceAll(',', '')) > 0, 'while the other anchors kept serving calls');
  const [, failedOnDelta] = /([\d,]+) calls failed on delta while it failed every call, all on leases taken before the pool ejected it\n/.exec(out.slice(returned)) ?? [];
  t.ok(Number(failedOnDelta?.replaceAll(',', '')) >= 5, `delta failed the calls that ejected it (${failedOnDelta})`);
  // Until delta failed, no call failed at all.
  const before = [...out.slice(0, failOn).matchAll(/^\[t=.*, ([\d,]+) errors;/gm)].map((m) => m[1]);
  t.ok(before.length > 0 && before.every((n) => n === '0'), 'no call failed before delta started failing');

  // After the return, delta may grow to 4 anchors: a burst fills every anchor, the pool opens delta#2 and delta#3, and drains them back, newest first.
  t.ok(returned < order[6]!, 'delta gets maxAnchors after its return');
  t.match(out.slice(order[6]!), new RegExp(`pool: ~ services/echo/delta → ${escape(delta)}, 2 → 2-4 anchors\n`), 'the pool reads the range');
  const extraLine = (i: number, change: string): number => out.search(new RegExp(`t=\\d+\\.\\ds {2}pool: services/echo/delta#${i} \\(${escape(delta)}\\) extra anchor ${change}: `));
  const burstStarts = out.search(/t=\d+\.\ds {2}load: a burst of 160 more loops \(.*maxStreamsPerAnchor 16 for the demo/);
  const [opened2, opened3] = [extraLine(2, 'opened'), extraLine(3, 'opened')];
  const burstEnds = out.search(/t=\d+\.\ds {2}load: the burst ends \(back to 32 loops\)\n/);
  const [drained3, drained2] = [extraLine(3, 'drained'), extraLine(2, 'drained')];
  t.ok([burstStarts, opened2, opened3, burstEnds, drained3, drained2].every((i) => i >= 0), 'the burst, both extra anchors opened and both drained are printed');
  t.ok(order[6]! < burstStarts && burstStarts < opened2 && opened2 < opened3 && opened3 < burstEnds && burstEnds < drained3 && drained3 < drained2, 'put, burst, opened #2 and #3, burst ends, drained #3 then #2');
  t.match(out.slice(opened2), /^.*extra anchor opened: callers wait and every anchor of the key is full; the key now has 3 anchors \(2-4\)$/m, 'opened: why, and the count');
  t.match(
    out.slice(drained2),
    /^.*extra anchor drained: .* for 1 s \(extraAnchorIdleMillis 1000 for the demo; the default is 30 s\); the key now has 2 anchors \(2-4\)$/m,
    'drained: after the demo\'s short extraAnchorIdleMillis',
  );
  t.equal(out.match(/ extra anchor (opened|drained|failed)/g)?.length, 4, 'two opened, two drained, nothing else');
  t.notMatch(out, / extra anchor failed/, 'no extra anchor failed');
  t.match(out, /^.*extra anchors \(pool\.stats\(\)\.extraAnchors\): 2 opened, 2 drained, 0 failed, 0 open; delta is back to 2 anchors$/m, 'the stats agree');
  const whileExtra = out.slice(opened3, drained3);
  for (const i of [2, 3]) {
    t.match(whileExtra, new RegExp(`^ {2}anchor services/echo/delta#${i}\\s+\\S+\\s+zone a\\s+READY\\s+SERVING\\s+[1-9][\\d,]* leases/s {2}#+ {2}\\(extra\\)$`, 'm'), `a snapshot shows delta#${i} marked extra, taking leases`);
  }
  t.match(whileExtra, /^\[t=.*; a burst of 160 more loops; 3 keys, 11 anchors \(11 READY, \d+ in rotation, 2 extra\)/m, 'the snapshot counts 2 extra anchors during the burst');
  t.match(whileExtra, new RegExp(`backend delta ${escape(delta)} \\(zone a\\): 4 anchors, 4 connections \\(server side\\)`), 'delta\'s server counts the extra connections');
  t.match(out.slice(burstEnds, drained3), /during the burst, delta's 2 extra anchors took [1-9][\d,]* leases\n/, 'the extra anchors took leases');
  t.notMatch(out.slice(drained2), /^ {2}anchor .*\(extra\)$/m, 'no snapshot marks an anchor extra once both drained');

  // Every anchor of every backend had leases in some snapshot.
  const busiest = new Map<string, number>();
  for (const [, slot, rate] of out.matchAll(/^ {2}anchor (\S+#\d+)\s+\S+\s+zone \S+\s+READY\s+SERVING\s+([\d,]+) leases\/s/gm)) {
    busiest.set(slot!, Math.max(busiest.get(slot!) ?? 0, Number(rate!.replaceAll(',', ''))));
  }
  const slots = ['alpha#0', 'alpha#1', 'alpha#2', 'beta#0', 'beta#1', 'gamma#0', 'gamma#1', 'gamma#2', 'gamma#3', 'delta#0', 'delta#1', 'delta#2', 'delta#3'];
  for (const slot of slots) t.ok((busiest.get(`services/echo/${slot}`) ?? 0) > 0, `leases on services/echo/${slot}`);
  t.match(out, /^ {2}anchor services\/echo\/beta#0\s+\S+\s+zone b\s+CLOSED$/m, 'the deleted backend’s anchors are shown closing');

  // The last snapshot: the servers count exactly the anchors the pool holds, and none for beta.
  const last = out.slice(out.lastIndexOf('[t='));
  for (const [name, addr, n] of [['alpha', alpha, 3], ['gamma', gamma, 4], ['delta', delta, 2]] as const) {
    t.match(last, new RegExp(`backend ${name} ${escape(addr)} \\(zone ${zones[name]}\\): ${n} anchors, ${n} connections \\(server side\\)`), `${name}: ${n} anchors, ${n} connections on its server`);
  }
  t.match(last, new RegExp(`backend beta ${escape(beta)} \\(zone b\\): 0 anchors, 0 connections \\(server side\\)`), 'beta: its connections closed after the del');
  for (const i of [0, 1, 2]) {
    t.match(last, new RegExp(`^ {2}anchor services/echo/alpha#${i}\\s+\\S+\\s+zone a\\s+READY\\s+SERVING\\s+[1-9][\\d,]* leases/s`, 'm'), `alpha#${i} takes leases again`);
  }
  for (const i of [0, 1]) {
    t.match(last, new RegExp(`^ {2}anchor services/echo/delta#${i}\\s+\\S+\\s+zone a\\s+READY\\s+SERVING\\s+[1-9][\\d,]* leases/s {2}#+$`, 'm'), `delta#${i} takes leases again, not marked ejected`);
  }
  t.match(last, new RegExp(`^\\[t=.*, ${failedOnDelta} errors;`, 'm'), 'no call failed but those on delta while it failed every call');
  t.match(last, /^ {2}zones: the pool is in zone a, mode local; calls by zone over the last second: a 100% · c 0%$/m, 'at the end every call is in zone a again (beta and zone b are gone)');
  for (const i of [2, 3]) t.match(out, new RegExp(`^ {2}services/echo/delta#${i}\\s+${escape(delta)}\\s+zone a\\s+[1-9][\\d,]* {2}\\(extra\\)$`, 'm'), `the summary marks delta#${i} extra`);
  t.match(
    out,
    new RegExp(`^Failed calls: ${failedOnDelta} \\(delta ${failedOnDelta}, all while it failed every call, on leases taken before the pool ejected it\\)$`, 'm'),
    'the summary counts them, all on delta',
  );
  const byZone = /^Leases by zone over the whole run \(the pool is in zone a; pool\.stats\(\)\.zones picks\): a ([\d,]+) \(\d+%\), b ([\d,]+) \(\d+%\), c ([\d,]+) \(\d+%\)$/m.exec(out);
  t.ok(byZone, 'the summary counts the leases by zone');
  t.ok(num(byZone?.[1]) > num(byZone?.[2]) + num(byZone?.[3]), 'most of them in zone a');

  assertNothingLeft(t, out, ['etcd', 'alpha', 'beta', 'gamma', 'delta']);
});

t.test('Ctrl-C in a terminal (SIGINT to the whole process group) mid-run: exit 130, nothing left', async (t) => {
  const demo = startDemo([DEMO, '--duration', '60']);
  await demo.waitFor(/^\[t=/m); // the load runs and the first snapshot is out
  process.kill(-demo.child.pid!, 'SIGINT');
  const { code } = await exitWithin(demo, 20_000);
  const out = demo.output();
  t.equal(code, 130, 'exit code 130 (128 + SIGINT)');
  t.match(out, /SIGINT: stopping everything the demo started/);
  t.match(out, /^stopped: .*etcd \(pid \d+\) and its data dir/m);
  assertNothingLeft(t, out, ['etcd', 'alpha', 'beta', 'gamma']);
});

t.test('SIGTERM to the demo alone while it starts: exit 143, nothing left', async (t) => {
  const demo = startDemo([DEMO, '--duration', '60']);
  await demo.waitFor(/^pids: gamma=\d+$/m);
  demo.child.kill('SIGTERM');
  const { code } = await exitWithin(demo, 20_000);
  t.equal(code, 143, 'exit code 143 (128 + SIGTERM)');
  assertNothingLeft(t, demo.output(), ['etcd', 'alpha', 'beta', 'gamma']);
});

t.test('--interactive: the printed etcdctl commands work as typed, and Ctrl-C ends it with 0', async (t) => {
  const demo = startDemo([DEMO, '--interactive']);
  // gamma moves to the pool's zone a too, so that calls reach it.
  const [, command] = await demo.waitFor(/# gamma: 1 → 4 anchors, and from zone c to zone a, so calls reach it\n {2}(etcdctl --endpoints=\S+ put services\/echo\/gamma '\S+#4@a')\n/);
  await demo.waitFor(/^\[t=/m);
  // Run exactly as printed, through a shell, the way a user pastes it.
  const typed = spawnSync('sh', ['-c', command!], { encoding: 'utf8' });
  t.equal(typed.status, 0, `${command} succeeds: ${typed.stderr}`);
  await demo.waitFor(/pool: ~ services\/echo\/gamma → \S+, 1 → 4 anchors, zone c → zone a\n/);
  await demo.waitFor(/^ {2}anchor services\/echo\/gamma#3\s+\S+\s+zone a\s+READY\s+SERVING\s+[1-9][\d,]* leases\/s/m);
  t.match(demo.output(), /etcdctl cannot flip it/, 'says that health is not set through etcd');
  process.kill(-demo.child.pid!, 'SIGINT');
  const { code } = await exitWithin(demo, 20_000);
  t.equal(code, 0, 'Ctrl-C is how --interactive ends: exit code 0');
  assertNothingLeft(t, demo.output(), ['etcd', 'alpha', 'beta', 'gamma', 'delta']);
});

t.test('usage: --help, bad flags exit 2 with a clear message', async (t) => {
  const run = (argv: string[]) => {
    const r = spawnSync(process.execPath, [DEMO, ...argv], { encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const help = run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /usage: npm run demo -- \[--duration SECONDS \| --quick\] \[--interactive\]/);
  const cases: [string[], RegExp][] = [
    [['--bogus'], /demo: Unknown option '--bogus'.*\n\nusage: npm run demo/s],
    [['--duration', 'soon'], /--duration must be a number of seconds from 4 to 86400, got "soon"/],
    [['--duration', '1'], /--duration must be a number of seconds from 4/],
    [['--duration', '8', '--quick'], /--duration and --quick cannot be combined/],
    [['--interactive', '--quick'], /--interactive runs until Ctrl-C/],
    [['extra'], /Unexpected argument 'extra'/],
  ];
  for (const [argv, message] of cases) {
    const { code, err } = run(argv);
    t.equal(code, 2, `npm run demo -- ${argv.join(' ')} exits 2`);
    t.match(err, message, argv.join(' '));
  }
});

t.test('the packaged CLI has no demo command (the demo runs from the repository only)', async (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const io: CommandIo = { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, interrupted: Promise.resolve() };
  t.equal(await main(['--help'], io), 0);
  t.notMatch(out.join('\n'), /demo/, 'not listed in the command overview');
  t.equal(await main(['demo'], io), 2, 'anchorpool demo is an unknown command');
  t.match(err.join('\n'), /unknown command "demo"/);
});
