// How the demo shows the commands it runs: exactly as a person would type them in a
// POSIX shell, so every printed etcdctl line can be copied into another terminal.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  return SAFE.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** `etcdctl --endpoints=… ARGS`, quoted; etcdctl 3.4+ speaks the v3 API by default. */
export function etcdctlCommandLine(endpoints: readonly string[], args: readonly string[]): string {
  return ['etcdctl', `--endpoints=${endpoints.join(',')}`, ...args].map(shellQuote).join(' ');
}
