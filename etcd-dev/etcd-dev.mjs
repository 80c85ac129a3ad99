// Local etcd for development, tests and the demo.
//
// One implementation used by the `etcd-dev/up|down|status` scripts, by the test
// harness (spec/support/etcd.ts) and by the demo. Plain ESM JavaScript with JSDoc
// types; it is type-checked by `tsc -p .` (allowJs + checkJs).
//
// Only loopback (127.0.0.1) is ever used.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

/** @typedef {(line: string) => void} Logger */

/**
 * @typedef {object} EtcdBinaries
 * @property {string} etcd absolute path of the etcd server binary
 * @property {string} etcdctl absolute path of the etcdctl binary
 */

/**
 * @typedef {object} EtcdctlResult
 * @property {string} stdout
 * @property {string} stderr
 * @property {number | null} code exit code (null when killed by a signal)
 * @property {NodeJS.Signals | null} signal
 * @property {boolean} timedOut true when etcdctl was killed because `timeoutMs` passed
 */

/**
 * @typedef {object} EtcdctlOptions
 * @property {string[] | string} endpoints client URLs, e.g. `http://127.0.0.1:2379`
 * @property {string} [input] written to etcdctl's stdin (e.g. the value for `put KEY`)
 * @property {number} [timeoutMs] kill etcdctl after this long (default 15000)
 * @property {boolean} [allowFail] resolve instead of rejecting on a non-zero exit or timeout
 * @property {Record<string, string>} [env] extra `ETCDCTL_*` variables (e.g. `ETCDCTL_CACERT`,
 *   `ETCDCTL_USER`), set after the inherited ones are dropped; unlike args, never shown in errors
 */

/**
 * Client TLS of the members (peers stay plain http on loopback).
 * @typedef {object} EtcdTlsOptions
 * @property {string} certFile server certificate (PEM), valid for IP 127.0.0.1
 * @property {string} keyFile its private key (PEM)
 * @property {string} caFile CA that clients verify the server with (and, with
 *   `clientCertAuth`, that etcd verifies client certificates with)
 * @property {boolean} [clientCertAuth] require a client certificate signed by `caFile`
 * @property {string} [clientCertFile] client certificate the health check presents (needed with `clientCertAuth`)
 * @property {string} [clientKeyFile] its private key
 */

/**
 * @typedef {object} StartClusterOptions
 * @property {number} [members] number of members (default 1)
 * @property {string} [dir] directory for data dirs and logs; created if missing,
 *   deleted by `stop()`. Default: a new `os.tmpdir()/anchorpool-etcd-XXXXXX`.
 * @property {number[]} [clientPorts] one per member; default: free ports
 * @property {number[]} [peerPorts] one per member; default: free ports
 * @property {number[]} [peerAdvertisePorts] one per member: the peer port the others dial
 *   (and `--initial-cluster` names) instead of `peerPorts`, e.g. a proxy the test controls
 *   in front of each member's peer port; default: the peer ports themselves
 * @property {string[]} [extraArgs] appended to every member's command line (last flag wins)
 * @property {Logger} [log] progress messages (default: none)
 * @property {number} [timeoutMs] health timeout (default 20000)
 * @property {(cluster: EtcdCluster) => void} [onSpawn] called synchronously as soon as the
 *   member processes exist, before waiting for health (lets callers register crash cleanup)
 * @property {EtcdTlsOptions} [tls] serve clients over https:// with these files
 */

/**
 * @typedef {object} DevStateMember
 * @property {string} name
 * @property {number} pid
 * @property {string} clientUrl
 * @property {string} peerUrl
 * @property {string} dataDir
 * @property {string} logFile
 */

/**
 * @typedef {object} DevState
 * @property {DevStateMember[]} members
 * @property {string} startedAt ISO timestamp
 * @property {string} dataRoot the mkdtemp directory holding every member's data dir and log
 */

const HEALTH_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;
const LOG_TAIL_LINES = 30;
/** Flags that keep etcd 3.4's own output short; `--log-level` only applies to the zap logger. */
const QUIET_FLAGS = ['--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn'];
const INSTALL_HINT =
  'Install etcd 3.4+ with `sudo apt-get install etcd-server etcd-client` ' +
  '(run `sudo apt-get update` first on a new machine), ' +
  'or put `etcd` and `etcdctl` binaries on PATH.';

/** @type {Logger} */
const silent = () => {};

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {unknown} err */
const errMessage = (err) => (err instanceof Error ? err.message : String(err));

// ---------------------------------------------------------------------------
// Binaries

/**
 * Look `name` up on PATH.
 * @param {string} name
 * @returns {string | null}
 */
function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The etcd and etcdctl binaries on PATH, or null when either is missing. Never installs.
 * @returns {EtcdBinaries | null}
 */
export function findEtcdBinaries() {
  const etcd = findOnPath('etcd');
  const etcdctl = findOnPath('etcdctl');
  return etcd && etcdctl ? { etcd, etcdctl } : null;
}

/**
 * Like {@link findEtcdBinaries} but throws an Error that says what to install.
 * @returns {EtcdBinaries}
 */
export function requireEtcdBinaries() {
  const found = findEtcdBinaries();
  if (!found) {
    throw new Error(
      `etcd/etcdctl not found on PATH. ${INSTALL_HINT} ` +
        'As root, `etcd-dev/up` installs them for you.',
    );
  }
  return found;
}

/**
 * Run a command, streaming its output line by line to `log`.
 * @param {string} cmd
 * @param {string[]} args
 * @param {Logger} log
 * @returns {Promise<void>}
 */
function runStreaming(cmd, args, log) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => log(line));
    }
    child.on('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}. ${INSTALL_HINT}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`\`${cmd} ${args.join(' ')}\` failed (${signal ?? `exit code ${code}`}). ${INSTALL_HINT}`));
    });
  });
}

/**
 * Make sure etcd and etcdctl are available. If they are on PATH, return their paths.
 * Otherwise, as root, `apt-get update && apt-get install -y etcd-server etcd-client`
 * (output streamed to `log`) and check again. Not root: throw an Error saying what to install.
 * @param {{ log?: Logger }} [options]
 * @returns {Promise<EtcdBinaries>}
 */
export async function ensureEtcdInstalled({ log = (line) => console.error(line) } = {}) {
  const found = findEtcdBinaries();
  if (found) return found;
  if (process.getuid?.() !== 0) {
    throw new Error(`etcd/etcdctl not found on PATH and not running as root, so not installing them. ${INSTALL_HINT}`);
  }
  if (!findOnPath('apt-get')) {
    throw new Error(`etcd/etcdctl not found on PATH and apt-get is not available. ${INSTALL_HINT}`);
  }
  log('etcd/etcdctl not found; installing with apt-get (etcd-server etcd-client) ...');
  await runStreaming('apt-get', ['update'], log);
  await runStreaming('apt-get', ['install', '-y', 'etcd-server', 'etcd-client'], log);
  const after = findEtcdBinaries();
  if (!after) {
    throw new Error(`apt-get install finished but etcd/etcdctl are still not on PATH. ${INSTALL_HINT}`);
  }
  log(`installed: ${after.etcd}, ${after.etcdctl}`);
  return after;
}

// ---------------------------------------------------------------------------
// Ports and health

/**
 * `count` distinct free TCP ports on 127.0.0.1. All listeners are held open until every
 * port is known, so the ports are distinct.
 * @param {number} count
 * @returns {Promise<number[]>}
 */
export async function freePorts(count) {
  /** @type {net.Server[]} */
  const servers = [];
  try {
    /** @type {number[]} */
    const ports = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve(undefined));
      });
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('unexpected server address');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve(undefined)))));
  }
}

/**
 * A free TCP port on 127.0.0.1 (listen on port 0, read it, close).
 * @returns {Promise<number>}
 */
export async function freePort() {
  const [port] = await freePorts(1);
  return /** @type {number} */ (port);
}

/**
 * Whether nothing listens on 127.0.0.1:port (we can bind it ourselves).
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function isPortFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * GET <clientUrl>/health; true when etcd answers {"health":"true"}. An https:// URL needs
 * `tls` (the CA, and the client certificate when etcd requires one).
 * @param {string} clientUrl
 * @param {number} [timeoutMs]
 * @param {EtcdTlsOptions} [tls]
 * @returns {Promise<boolean>}
 */
export function checkHealth(clientUrl, timeoutMs = 1000, tls) {
  return new Promise((resolve) => {
    const url = `${clientUrl}/health`;
    /** @type {https.RequestOptions} */
    const options = { agent: false, timeout: timeoutMs };
    if (tls) {
      options.ca = fs.readFileSync(tls.caFile);
      if (tls.clientCertFile) options.cert = fs.readFileSync(tls.clientCertFile);
      if (tls.clientKeyFile) options.key = fs.readFileSync(tls.clientKeyFile);
    }
    /** @param {import('node:http').IncomingMessage} res */
    const onResponse = (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && JSON.parse(body).health === 'true');
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    };
    const req = url.startsWith('https:') ? https.get(url, options, onResponse) : http.get(url, options, onResponse);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

/**
 * Last `lines` lines of a file ('' when unreadable).
 * @param {string} file
 * @param {number} [lines]
 * @returns {string}
 */
export function tailFile(file, lines = LOG_TAIL_LINES) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').filter(Boolean).slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * @param {string} name
 * @param {string} logFile
 */
function logTailBlock(name, logFile) {
  const tail = tailFile(logFile);
  return tail ? `\n--- last lines of ${logFile} (${name}) ---\n${tail}\n--- end of ${name} log ---` : ` (${logFile} is empty)`;
}

// ---------------------------------------------------------------------------
// Member command lines and processes

/**
 * @param {{ name: string, dataDir: string, clientPort: number, peerPort: number,
 *   initialCluster: string, token?: string, extraArgs?: string[], tls?: EtcdTlsOptions,
 *   peerAdvertisePort?: number }} o
 * @returns {string[]}
 */
function memberArgs(o) {
  const clientUrl = `${o.tls ? 'https' : 'http'}://127.0.0.1:${o.clientPort}`;
  const peerUrl = `http://127.0.0.1:${o.peerPort}`;
  const advertisedPeerUrl = `http://127.0.0.1:${o.peerAdvertisePort ?? o.peerPort}`;
  return [
    '--name', o.name,
    '--data-dir', o.dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', advertisedPeerUrl,
    '--initial-cluster', o.initialCluster,
    '--initial-cluster-state', 'new',
    ...(o.token ? ['--initial-cluster-token', o.token] : []),
    ...(o.tls ? ['--cert-file', o.tls.certFile, '--key-file', o.tls.keyFile, '--trusted-ca-file', o.tls.caFile] : []),
    ...(o.tls?.clientCertAuth ? ['--client-cert-auth'] : []),
    ...QUIET_FLAGS,
    ...(o.extraArgs ?? []),
  ];
}

/**
 * Spawn etcd directly (no shell), stdout+stderr appended to `logFile`.
 * @param {string} bin
 * @param {string[]} args
 * @param {string} logFile
 * @param {boolean} detached
 */
function spawnEtcd(bin, args, logFile, detached) {
  const fd = fs.openSync(logFile, 'a');
  try {
    return spawn(bin, args, { stdio: ['ignore', fd, fd], detached });
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Whether `pid` is (still) an etcd process: /proc/<pid>/cmdline names the etcd binary and,
 * when `dataDir` is given, carries that data dir. A zombie has an empty cmdline, so it
 * counts as gone. Guards against killing a reused PID.
 * @param {number} pid
 * @param {string} [dataDir]
 * @returns {boolean}
 */
export function isEtcdPid(pid, dataDir) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let cmdline;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    if (fs.existsSync('/proc/self')) return false; // Linux: process is gone
    try {
      process.kill(pid, 0); // no procfs: best effort
      return true;
    } catch {
      return false;
    }
  }
  const argv = cmdline.split('\0');
  // The etcd server itself (not etcdctl/etcdutl, not a node script with etcd in its name).
  if (!argv[0] || !/^etcd(?!ctl|utl)/.test(path.basename(argv[0]))) return false;
  if (dataDir) {
    const i = argv.indexOf('--data-dir');
    if (i >= 0 && argv[i + 1] !== dataDir) return false;
  }
  return true;
}

/** One etcd member process of an {@link EtcdCluster}. */
export class EtcdMember {
  /** @type {string} */ name;
  /** @type {string} */ clientUrl;
  /** @type {number} */ clientPort;
  /** @type {string} */ peerUrl;
  /** @type {number} */ peerPort;
  /** @type {string} */ dataDir;
  /** @type {string} */ logFile;
  /** The full etcd command line (without the binary). @type {string[]} */ args;
  /** PID of the current (or most recent) etcd process. @type {number} */ pid = 0;
  /** Exit of the most recent process, once it exited. @type {{ code: number | null, signal: NodeJS.Signals | null } | null} */
  lastExit = null;
  /** @type {string} */ #bin;
  /** @type {EtcdTlsOptions | undefined} */ #tls;
  /** @type {import('node:child_process').ChildProcess | null} */ #child = null;
  /** @type {Promise<void>} */ #exited = Promise.resolve();
  #alive = false;

  /**
   * @param {{ name: string, clientPort: number, peerPort: number, dataDir: string,
   *   logFile: string, args: string[], bin: string, tls?: EtcdTlsOptions }} o
   */
  constructor(o) {
    this.name = o.name;
    this.clientPort = o.clientPort;
    this.clientUrl = `${o.tls ? 'https' : 'http'}://127.0.0.1:${o.clientPort}`;
    this.#tls = o.tls;
    this.peerPort = o.peerPort;
    this.peerUrl = `http://127.0.0.1:${o.peerPort}`;
    this.dataDir = o.dataDir;
    this.logFile = o.logFile;
    this.args = o.args;
    this.#bin = o.bin;
  }

  /** True while the etcd process has not exited. */
  get running() {
    return this.#alive;
  }

  /** `127.0.0.1:PORT` */
  get host() {
    return `127.0.0.1:${this.clientPort}`;
  }

  /** Spawn the process (internal; use start()). */
  spawnProcess() {
    if (this.#alive) throw new Error(`etcd member ${this.name} is already running (pid ${this.pid})`);
    const child = spawnEtcd(this.#bin, this.args, this.logFile, false);
    this.#child = child;
    this.lastExit = null;
    this.#alive = true;
    this.pid = child.pid ?? 0;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#alive = false;
        this.lastExit = { code, signal };
        resolve();
      });
      child.once('error', (err) => {
        // spawn failure (e.g. ENOENT): no 'exit' follows
        if (child.pid === undefined) {
          fs.appendFileSync(this.logFile, `cannot spawn ${this.#bin}: ${err.message}\n`);
          this.#alive = false;
          this.lastExit = { code: null, signal: null };
          resolve();
        }
      });
    });
  }

  /**
   * Poll /health until it reports {"health":"true"}; fail early (with the log tail) when
   * the process exits.
   * @param {number} [timeoutMs]
   * @returns {Promise<void>}
   */
  async waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.#alive) {
        const how = this.lastExit?.signal ?? `exit code ${this.lastExit?.code}`;
        throw new Error(`etcd member ${this.name} (pid ${this.pid}) exited (${how}) before becoming healthy${logTailBlock(this.name, this.logFile)}`);
      }
      if (await checkHealth(this.clientUrl, undefined, this.#tls)) return;
      if (Date.now() >= deadline) {
        throw new Error(`etcd member ${this.name} (pid ${this.pid}, ${this.clientUrl}) not healthy after ${timeoutMs} ms${logTailBlock(this.name, this.logFile)}`);
      }
      await sleep(100);
    }
  }

  /**
   * Wait until the client port accepts TCP connections (no quorum needed).
   * @param {number} [timeoutMs]
   */
  async waitListening(timeoutMs = HEALTH_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.#alive) throw new Error(`etcd member ${this.name} exited before listening${logTailBlock(this.name, this.logFile)}`);
      const ok = await new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: this.clientPort }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() >= deadline) throw new Error(`etcd member ${this.name} not listening on ${this.clientUrl} after ${timeoutMs} ms${logTailBlock(this.name, this.logFile)}`);
      await sleep(50);
    }
  }

  /**
   * Send `signal` (default SIGKILL) and wait for the process to exit. No-op when not running.
   * @param {NodeJS.Signals} [signal]
   * @returns {Promise<void>}
   */
  async kill(signal = 'SIGKILL') {
    if (!this.#alive) return this.#exited;
    this.#child?.kill(signal);
    await this.#exited;
  }

  /**
   * Restart with the same command line (same ports and data dir) and wait until healthy.
   * With `{ waitHealthy: false }` only wait until the client port listens, which is what
   * you want when restarting members of a cluster that has no quorum yet.
   * @param {{ waitHealthy?: boolean, timeoutMs?: number }} [options]
   * @returns {Promise<void>}
   */
  async start({ waitHealthy = true, timeoutMs = HEALTH_TIMEOUT_MS } = {}) {
    if (!this.#alive) this.spawnProcess();
    if (waitHealthy) await this.waitHealthy(timeoutMs);
    else await this.waitListening(timeoutMs);
  }

  /**
   * SIGTERM, then SIGKILL after 3 s; waits for exit. No-op when not running.
   * @returns {Promise<void>}
   */
  async stop() {
    if (!this.#alive) return this.#exited;
    this.#child?.kill('SIGTERM');
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      new Promise((resolve) => (timer = setTimeout(() => resolve(true), STOP_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut) await this.kill('SIGKILL');
  }
}

/**
 * Clusters started by this process and not stopped yet. A single 'exit' listener kills
 * them, so a script that exits without stop() (process.exit, uncaught exception) does not
 * leave etcd behind. Signals are left to the caller (see spec/support/process-cleanup.ts).
 * @type {Set<EtcdCluster>}
 */
const unstopped = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const cluster of unstopped) cluster.killSync();
  });
}

/** @param {number} ms */
function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A set of etcd members started by {@link startCluster}. */
export class EtcdCluster {
  /** @type {EtcdMember[]} */ members;
  /** @type {string} */ dir;
  /** @type {Promise<void> | null} */ #stopping = null;

  /**
   * @param {EtcdMember[]} members
   * @param {string} dir
   */
  constructor(members, dir) {
    this.members = members;
    this.dir = dir;
    installExitHook();
    unstopped.add(this);
  }

  /** Client URLs, `http://127.0.0.1:PORT` (`https://` with TLS), one per member. */
  get endpoints() {
    return this.members.map((m) => m.clientUrl);
  }

  /** `127.0.0.1:PORT`, one per member. */
  get hosts() {
    return this.members.map((m) => m.host);
  }

  /** Client URLs of the members whose process is running. */
  get runningEndpoints() {
    return this.members.filter((m) => m.running).map((m) => m.clientUrl);
  }

  /** Whether stop() was called. */
  get stopped() {
    return this.#stopping !== null;
  }

  /**
   * Wait until every running member reports healthy.
   * @param {number} [timeoutMs]
   */
  async waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS) {
    const results = await Promise.allSettled(this.members.map((m) => m.waitHealthy(timeoutMs)));
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [errMessage(r.reason)] : []));
    if (errors.length) throw new Error(`etcd cluster in ${this.dir} did not become healthy:\n${errors.join('\n')}`);
  }

  /**
   * Stop every member (SIGTERM, SIGKILL after 3 s), wait for exit, delete `dir`. Idempotent.
   * @returns {Promise<void>}
   */
  stop() {
    unstopped.delete(this);
    this.#stopping ??= (async () => {
      // One at a time: when all members get SIGTERM together, the leader tries to hand
      // leadership to a follower that is itself shutting down and hangs for seconds.
      for (const m of this.members) await m.stop();
      await fsp.rm(this.dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }

  /**
   * Synchronous last-resort cleanup for exit handlers: SIGKILL every running member, wait
   * (at most 2 s) until they are gone, delete `dir`. Safe to call more than once.
   */
  killSync() {
    unstopped.delete(this);
    const pids = this.members.filter((m) => m.running).map((m) => m.pid);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Wait so that a dying etcd cannot recreate files after the rm (a zombie counts as gone).
    const deadline = Date.now() + 2000;
    while (pids.some((pid) => isEtcdPid(pid)) && Date.now() < deadline) sleepSync(10);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Start an etcd cluster of `members` members on 127.0.0.1 and wait until every member is
 * healthy (for several members that means a leader was elected). Members are named `n1`
 * for a single node, `m1..mN` otherwise. Each member logs to `<dir>/<name>.log`.
 * On failure everything that was started is stopped and `dir` is removed; the error
 * carries the tail of the failing members' logs.
 * @param {StartClusterOptions} [options]
 * @returns {Promise<EtcdCluster>}
 */
export async function startCluster(options = {}) {
  const { members: count = 1, extraArgs = [], log = silent, timeoutMs = HEALTH_TIMEOUT_MS, onSpawn, tls } = options;
  if (!Number.isInteger(count) || count < 1) throw new Error(`members must be a positive integer, got ${count}`);
  if (tls?.clientCertAuth && !(tls.clientCertFile && tls.clientKeyFile)) {
    throw new Error('tls.clientCertAuth needs tls.clientCertFile and tls.clientKeyFile for the health check');
  }
  for (const [label, ports] of /** @type {const} */ ([['clientPorts', options.clientPorts], ['peerPorts', options.peerPorts], ['peerAdvertisePorts', options.peerAdvertisePorts]])) {
    if (ports && ports.length !== count) throw new Error(`${label} needs ${count} entries, got ${ports.length}`);
  }
  const { etcd: bin } = requireEtcdBinaries();
  const dir = options.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'anchorpool-etcd-')));
  await fsp.mkdir(dir, { recursive: true });
  const autoPorts = !options.clientPorts && !options.peerPorts;

  for (let attempt = 1; ; attempt++) {
    const free = await freePorts(2 * count);
    const clientPorts = options.clientPorts ?? free.slice(0, count);
    const peerPorts = options.peerPorts ?? free.slice(count);
    const names = count === 1 ? ['n1'] : Array.from({ length: count }, (_, i) => `m${i + 1}`);
    const advertised = options.peerAdvertisePorts ?? peerPorts;
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${advertised[i]}`).join(',');
    const token = count > 1 ? `anchorpool-${randomBytes(4).toString('hex')}` : undefined;
    const members = names.map((name, i) => {
      const dataDir = path.join(dir, `${name}.etcd`);
      const clientPort = /** @type {number} */ (clientPorts[i]);
      const peerPort = /** @type {number} */ (peerPorts[i]);
      return new EtcdMember({
        name, clientPort, peerPort, dataDir, bin,
        logFile: path.join(dir, `${name}.log`),
        args: memberArgs({ name, dataDir, clientPort, peerPort, initialCluster, token, extraArgs, ...(tls ? { tls } : {}), ...(options.peerAdvertisePorts ? { peerAdvertisePort: options.peerAdvertisePorts[i] } : {}) }),
        ...(tls ? { tls } : {}),
      });
    });
    const cluster = new EtcdCluster(members, dir);
    for (const m of members) {
      m.spawnProcess();
      log(`started etcd ${m.name} pid ${m.pid} on ${m.clientUrl} (log ${m.logFile})`);
    }
    onSpawn?.(cluster);
    try {
      await cluster.waitHealthy(timeoutMs);
      return cluster;
    } catch (err) {
      unstopped.delete(cluster);
      await Promise.all(members.map((m) => m.kill('SIGKILL')));
      // Another process may grab an auto-picked port between freePorts() and etcd's bind.
      const raced = members.some((m) => /address already in use/.test(tailFile(m.logFile, 200)));
      if (autoPorts && raced && attempt < 3) {
        log(`port race while starting etcd (attempt ${attempt}); retrying with new ports`);
        for (const m of members) {
          await fsp.rm(m.dataDir, { recursive: true, force: true });
          await fsp.rm(m.logFile, { force: true });
        }
        continue;
      }
      await fsp.rm(dir, { recursive: true, force: true });
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------
// etcdctl

/**
 * Run the real etcdctl (ETCDCTL_API=3) with `--endpoints=`. Rejects with an Error that
 * includes stderr on a non-zero exit or a timeout, unless `allowFail`.
 * @param {string[]} args
 * @param {EtcdctlOptions} options
 * @returns {Promise<EtcdctlResult>}
 */
export function etcdctl(args, { endpoints, input, timeoutMs = 15_000, allowFail = false, env: extraEnv = {} }) {
  const bin = findOnPath('etcdctl') ?? '/usr/bin/etcdctl';
  const list = Array.isArray(endpoints) ? endpoints.join(',') : endpoints;
  /** @type {NodeJS.ProcessEnv} */
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
  for (const [k, v] of Object.entries(extraEnv)) if (k.startsWith('ETCDCTL_')) env[k] = v;
  env.ETCDCTL_API = '3';
  const argv = [`--endpoints=${list}`, ...args];
  const shown = `etcdctl ${argv.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {}); // etcdctl may exit before reading stdin
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin}: ${err.message}. ${INSTALL_HINT}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { stdout, stderr, code, signal, timedOut };
      if (allowFail || (code === 0 && !timedOut)) return resolve(result);
      const why = timedOut ? `timed out after ${timeoutMs} ms` : signal ? `killed by ${signal}` : `exit code ${code}`;
      reject(new Error(`\`${shown}\` failed (${why}): ${stderr.trim() || stdout.trim() || '(no output)'}`));
    });
  });
}

/**
 * Parse `etcdctl endpoint status -w json`. The uint64 IDs do not fit a JS number, so they
 * are turned into strings before JSON.parse.
 * @param {string} stdout
 * @returns {{ endpoint: string, memberId: string, leaderId: string, raftTerm: number }[]}
 */
export function parseEndpointStatus(stdout) {
  const text = stdout.trim();
  if (!text.startsWith('[')) return [];
  const quoted = text.replace(/"(leader|member_id|cluster_id|revision|raft_term)":(\d+)/g, '"$1":"$2"');
  /** @type {any[]} */
  let rows;
  try {
    rows = JSON.parse(quoted);
  } catch {
    return [];
  }
  return rows.flatMap((row) =>
    row && row.Status && row.Status.header
      ? [{
          endpoint: String(row.Endpoint),
          memberId: String(row.Status.header.member_id),
          leaderId: String(row.Status.leader),
          raftTerm: Number(row.Status.raftTerm ?? row.Status.header.raft_term),
        }]
      : [],
  );
}

/**
 * The member that is currently leader (asks the running members with
 * `etcdctl endpoint status -w json` and compares `Status.leader` with
 * `Status.header.member_id`), or null when none reports itself leader.
 * @param {EtcdCluster} cluster
 * @returns {Promise<EtcdMember | null>}
 */
export async function leaderOf(cluster) {
  const endpoints = cluster.runningEndpoints;
  if (endpoints.length === 0) return null;
  const res = await etcdctl(['endpoint', 'status', '-w', 'json', '--command-timeout=2s', '--dial-timeout=2s'], {
    endpoints,
    allowFail: true,
    timeoutMs: 10_000,
  });
  const leader = parseEndpointStatus(res.stdout).find((s) => s.leaderId !== '0' && s.leaderId === s.memberId);
  if (!leader) return null;
  return cluster.members.find((m) => m.clientUrl === leader.endpoint) ?? null;
}

// ---------------------------------------------------------------------------
// The long-running dev cluster (etcd-dev/up, down, status)

const DEV_PORTS = {
  1: { client: [2379], peer: [2380] },
  3: { client: [2379, 22379, 32379], peer: [2380, 22380, 32380] },
};

/** `${ANCHORPOOL_ETCD_DEV_DIR:-<os.tmpdir()>/anchorpool-etcd-dev}` */
export function devStateDir() {
  return process.env.ANCHORPOOL_ETCD_DEV_DIR || path.join(os.tmpdir(), 'anchorpool-etcd-dev');
}

const statePath = () => path.join(devStateDir(), 'state.json');

/**
 * The recorded dev cluster, or null.
 * @returns {DevState | null}
 */
export function readDevState() {
  let text;
  try {
    text = fs.readFileSync(statePath(), 'utf8');
  } catch {
    return null;
  }
  try {
    const state = JSON.parse(text);
    if (!state || !Array.isArray(state.members)) throw new Error('no members');
    return /** @type {DevState} */ (state);
  } catch (err) {
    throw new Error(`corrupt dev state ${statePath()}: ${errMessage(err)}; delete it (and kill any etcd by hand)`);
  }
}

/** @param {DevState} state */
function writeDevState(state) {
  const file = statePath();
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/** @param {DevStateMember} m */
const devMemberAlive = (m) => isEtcdPid(m.pid, m.dataDir);

/**
 * Serialize up/down so two concurrent `up`s never start two clusters.
 * @template T
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function withDevLock(fn) {
  const dir = devStateDir();
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, 'lock');
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = Number(fs.readFileSync(lock, 'utf8'));
      let alive = false;
      try {
        if (holder > 0) process.kill(holder, 0);
        alive = holder > 0;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another etcd-dev command (pid ${holder}) is running; lock ${lock}`);
      fs.rmSync(lock, { force: true }); // stale
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/**
 * Wait until none of `members` is alive.
 * @param {DevStateMember[]} members
 * @param {number} timeoutMs
 */
async function waitDevGone(members, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (members.some(devMemberAlive)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Kill the recorded members (only PIDs that are still that etcd), wait, delete data + state.
 * @param {DevState} state
 * @param {Logger} log
 */
async function teardownDev(state, log) {
  const alive = state.members.filter(devMemberAlive);
  for (const m of state.members) {
    if (!alive.includes(m)) log(`${m.name}: pid ${m.pid} is not running (or is no longer etcd); not killing it`);
  }
  // One at a time (see EtcdCluster.stop): SIGTERM, SIGKILL after 5 s.
  for (const m of alive) {
    try {
      process.kill(m.pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
    if (await waitDevGone([m], 5_000)) continue;
    log(`${m.name}: pid ${m.pid} ignored SIGTERM; sending SIGKILL`);
    try {
      process.kill(m.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
    if (!(await waitDevGone([m], 5_000))) throw new Error(`etcd ${m.name} (pid ${m.pid}) did not exit after SIGKILL`);
  }
  for (const m of alive) log(`stopped ${m.name} (pid ${m.pid})`);
  const root = path.resolve(state.dataRoot ?? '');
  const stateDir = path.resolve(devStateDir());
  // Only ever delete inside the state dir, whatever the state file says.
  if (state.dataRoot && root.startsWith(stateDir + path.sep)) {
    await fsp.rm(root, { recursive: true, force: true });
  }
  await fsp.rm(statePath(), { force: true });
}

/**
 * Start the long-running dev cluster unless it already runs (then print "already running").
 * Single node: client 127.0.0.1:2379, peer 2380. `cluster: 3`: clients 2379, 22379, 32379;
 * peers 2380, 22380, 32380. Members are detached and outlive this process.
 * @param {{ cluster?: number, log?: Logger }} [options]
 * @returns {Promise<DevState>}
 */
export async function devUp({ cluster = 1, log = (line) => console.log(line) } = {}) {
  if (cluster !== 1 && cluster !== 3) throw new Error(`--cluster must be 1 or 3, got ${cluster}`);
  const ports = DEV_PORTS[cluster];
  return withDevLock(async () => {
    const existing = readDevState();
    if (existing) {
      const alive = existing.members.filter(devMemberAlive);
      if (alive.length === existing.members.length) {
        log(`already running (${existing.members.length} member${existing.members.length > 1 ? 's' : ''}, started ${existing.startedAt}): ${existing.members.map((m) => `${m.name} pid ${m.pid} ${m.clientUrl}`).join(', ')}`);
        if (existing.members.length !== cluster) log(`(asked for ${cluster}; run etcd-dev/down first to change the size)`);
        return existing;
      }
      if (alive.length > 0) {
        throw new Error(`the dev cluster is only partly running (${alive.length}/${existing.members.length} members alive); run etcd-dev/down first`);
      }
      log('removing stale state of a dev cluster that is no longer running');
      await teardownDev(existing, log);
    }

    const { etcd: bin } = await ensureEtcdInstalled({ log });
    for (const [i, port] of [...ports.client, ...ports.peer].entries()) {
      if (!(await isPortFree(port))) {
        const kind = i < ports.client.length ? 'client' : 'peer';
        throw new Error(
          `127.0.0.1:${port} (etcd ${kind} port) is already in use by another process, not by the anchorpool dev etcd. ` +
            `Stop it first (find it with: ss -ltnp 'sport = :${port}').`,
        );
      }
    }

    const stateDir = devStateDir();
    const dataRoot = await fsp.mkdtemp(path.join(stateDir, 'data-'));
    const names = cluster === 1 ? ['n1'] : ['m1', 'm2', 'm3'];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports.peer[i]}`).join(',');
    const token = cluster > 1 ? `anchorpool-dev-${randomBytes(4).toString('hex')}` : undefined;
    /** @type {DevState} */
    const state = { members: [], startedAt: new Date().toISOString(), dataRoot };
    for (const [i, name] of names.entries()) {
      const clientPort = /** @type {number} */ (ports.client[i]);
      const peerPort = /** @type {number} */ (ports.peer[i]);
      const dataDir = path.join(dataRoot, name);
      const logFile = path.join(dataRoot, `${name}.log`);
      const child = spawnEtcd(bin, memberArgs({ name, dataDir, clientPort, peerPort, initialCluster, token }), logFile, true);
      child.on('error', (err) => fs.appendFileSync(logFile, `cannot spawn ${bin}: ${err.message}\n`));
      child.unref();
      state.members.push({ name, pid: child.pid ?? 0, clientUrl: `http://127.0.0.1:${clientPort}`, peerUrl: `http://127.0.0.1:${peerPort}`, dataDir, logFile });
    }
    // Record before waiting, so `down` can clean up even if this process dies now.
    writeDevState(state);

    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    const pending = new Set(state.members);
    while (pending.size > 0) {
      for (const m of pending) {
        if (!devMemberAlive(m)) {
          const tail = logTailBlock(m.name, m.logFile);
          await teardownDev(state, silent);
          throw new Error(`etcd ${m.name} (pid ${m.pid}) exited during startup${tail}`);
        }
        if (await checkHealth(m.clientUrl)) pending.delete(m);
      }
      if (pending.size === 0) break;
      if (Date.now() >= deadline) {
        const tails = [...pending].map((m) => logTailBlock(m.name, m.logFile)).join('');
        await teardownDev(state, silent);
        throw new Error(`etcd dev cluster not healthy after ${HEALTH_TIMEOUT_MS} ms${tails}`);
      }
      await sleep(100);
    }

    const endpoints = state.members.map((m) => m.clientUrl).join(',');
    log(`etcd dev cluster running (${cluster} member${cluster > 1 ? 's' : ''}):`);
    for (const m of state.members) log(`  ${m.name}  pid ${m.pid}  ${m.clientUrl}  log ${m.logFile}`);
    log(`endpoints: ${endpoints}`);
    log('try:');
    log(`  ETCDCTL_API=3 etcdctl --endpoints=${endpoints} put services/echo/b1 '{"addr":"127.0.0.1:50051","anchors":4}'`);
    log(`  ETCDCTL_API=3 etcdctl --endpoints=${endpoints} get --prefix services/`);
    log('stop it with: etcd-dev/down');
    return state;
  });
}

/**
 * Stop the dev cluster: kill exactly the recorded PIDs (only while they are still that
 * etcd), wait for exit, delete data and state.
 * @param {{ log?: Logger }} [options]
 * @returns {Promise<void>}
 */
export async function devDown({ log = (line) => console.log(line) } = {}) {
  await withDevLock(async () => {
    const state = readDevState();
    if (!state) {
      log(`not running (no state in ${devStateDir()})`);
      return;
    }
    await teardownDev(state, log);
    log('etcd dev cluster stopped; data and state removed');
  });
}

/**
 * Print the dev cluster's members and `etcdctl endpoint status -w table`.
 * @param {{ log?: Logger }} [options]
 * @returns {Promise<number>} 0 when running, 3 when not running
 */
export async function devStatus({ log = (line) => console.log(line) } = {}) {
  const state = readDevState();
  if (!state) {
    log(`not running (no state in ${devStateDir()})`);
    return 3;
  }
  const alive = state.members.filter(devMemberAlive);
  for (const m of state.members) {
    log(`${m.name}  pid ${m.pid}  ${devMemberAlive(m) ? 'alive' : 'NOT RUNNING'}  ${m.clientUrl}  log ${m.logFile}`);
  }
  if (alive.length === 0) {
    log('not running (stale state; etcd-dev/down cleans it up)');
    return 3;
  }
  if (alive.length < state.members.length) log(`degraded: ${alive.length}/${state.members.length} members alive`);
  const res = await etcdctl(['endpoint', 'status', '-w', 'table', '--command-timeout=2s', '--dial-timeout=2s'], {
    endpoints: alive.map((m) => m.clientUrl),
    allowFail: true,
    timeoutMs: 10_000,
  });
  for (const line of res.stdout.trimEnd().split('\n')) if (line) log(line);
  if (res.code !== 0) log(`etcdctl endpoint status failed: ${res.stderr.trim()}`);
  return 0;
}

// ---------------------------------------------------------------------------
// CLI used by etcd-dev/up, etcd-dev/down, etcd-dev/status

const USAGE = {
  up: `usage: etcd-dev/up [--cluster 1|3]

Start a local etcd for development and leave it running (idempotent).
  --cluster 1   single node on http://127.0.0.1:2379 (default)
  --cluster 3   three members on http://127.0.0.1:2379, :22379, :32379
Installs etcd with apt-get when it is missing and you are root.
State: \${ANCHORPOOL_ETCD_DEV_DIR:-<tmpdir>/anchorpool-etcd-dev}/state.json`,
  down: `usage: etcd-dev/down

Stop the etcd started by etcd-dev/up and delete its data.`,
  status: `usage: etcd-dev/status

Show the dev etcd's members and endpoint status. Exit code 0 when running, 3 when not.`,
};

/**
 * Entry point for the scripts. Returns the process exit code.
 * @param {'up' | 'down' | 'status'} command
 * @param {string[]} argv arguments after the script name
 * @returns {Promise<number>}
 */
export async function runCli(command, argv) {
  /** @type {import('node:util').ParseArgsConfig['options']} */
  const options = { help: { type: 'boolean', short: 'h' } };
  if (command === 'up') options.cluster = { type: 'string', short: 'c', default: '1' };
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true }));
  } catch (err) {
    console.error(`etcd-dev/${command}: ${errMessage(err)}\n\n${USAGE[command]}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE[command]);
    return 0;
  }
  try {
    if (command === 'up') {
      const cluster = Number(values.cluster);
      if (cluster !== 1 && cluster !== 3) {
        console.error(`etcd-dev/up: --cluster must be 1 or 3, got ${values.cluster}\n\n${USAGE.up}`);
        return 2;
      }
      await devUp({ cluster });
      return 0;
    }
    if (command === 'down') {
      await devDown();
      return 0;
    }
    return await devStatus();
  } catch (err) {
    console.error(`etcd-dev/${command}: ${errMessage(err)}`);
    return 1;
  }
}
