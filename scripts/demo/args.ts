/**
 * The command line of `npm run demo` (scripts/demo.ts): its flags, help text and
 * validation, kept apart from the demo's story so it can be read (and tested) alone.
 */
import { parseArgs } from 'node:util';

/** A mistake on the demo's command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

export const DEMO_HELP = `usage: npm run demo -- [--duration SECONDS | --quick] [--interactive]

Run anchorpool end to end on this machine: a dev etcd on a free loopback port, grpc-js
echo backends (with the grpc.health.v1 service), registered with the real etcdctl, each
in a zone (a, b or c), and a lease pool on etcd:///services/echo/ in zone a with health
checks on, under a load of real calls. A live chart shows the leases per second on every
anchor, its zone, state and health, the connections each backend counts, and the calls
by zone: they stay in zone a. Mid-run the demo adds a backend, changes one backend's
anchors and deletes one, with etcdctl, printing every command; in between, zone a's two
backends report NOT_SERVING, one and then both: calls leave zone a, part of them and then
all, and come back once both serve again. Then one backend fails every call until the
pool's outlier detection ejects it (for 2 s, a short ejection time for the demo), and
the pool returns it afterwards. Last, that backend's key may grow (maxAnchors 4): a burst
of slow calls fills every anchor of zone a, the pool opens extra anchors for it, the
chart marks them extra, and they drain back 1 to 3 s after the burst
(extraAnchorIdleMillis 1000 for the demo).
Everything it starts is stopped when it ends.

  --duration SECONDS   how long the load runs (default 20; at least 4); the ejection
                       and the extra anchors add 7 s to that, and the zone scene up to
                       6 s (2 s at the default, none from 30 s on)
  --quick              the same as --duration 8
  --interactive        no scripted changes (no zone flip, no ejection, no burst): run until
                       Ctrl-C and print the etcdctl commands to type in another terminal
  -h, --help           this help

Needs etcd and etcdctl 3.4+ on PATH (installed from Debian's packages when missing and
run as root).

Exit status: 0 done (also Ctrl-C in --interactive), 1 the demo failed, 2 usage error,
130 interrupted by Ctrl-C (SIGINT), 143 by SIGTERM, 129 by SIGHUP.`;

export interface DemoOptions {
  /** Seconds the load runs (ignored with `interactive`). */
  durationSeconds: number;
  interactive: boolean;
}

export const DEFAULT_DEMO_SECONDS = 20;
const QUICK_DEMO_SECONDS = 8;
const MIN_DEMO_SECONDS = 4;
const MAX_DEMO_SECONDS = 24 * 3600;

/** The demo's options, or undefined for --help. Throws UsageError (or parseArgs' TypeError) on bad flags. */
export function parseDemoArgs(argv: string[]): DemoOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      quick: { type: 'boolean' },
      interactive: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  if (values.duration !== undefined && values.quick) throw new UsageError('--duration and --quick cannot be combined');
  if (values.interactive && (values.duration !== undefined || values.quick)) {
    throw new UsageError('--interactive runs until Ctrl-C; it takes no --duration or --quick');
  }
  let durationSeconds = values.quick ? QUICK_DEMO_SECONDS : DEFAULT_DEMO_SECONDS;
  if (values.duration !== undefined) {
    // Number('') is 0 and Number(' 8') is 8: require plain digits, an optional fraction.
    durationSeconds = /^\d+(\.\d+)?$/.test(values.duration) ? Number(values.duration) : NaN;
    if (!(durationSeconds >= MIN_DEMO_SECONDS && durationSeconds <= MAX_DEMO_SECONDS)) {
      throw new UsageError(`--duration must be a number of seconds from ${MIN_DEMO_SECONDS} to ${MAX_DEMO_SECONDS}, got ${JSON.stringify(values.duration)}`);
    }
  }
  return { durationSeconds, interactive: values.interactive ?? false };
}
