/**
 * `anchorpool demo`: runs the demo. The demo itself (etcd, backends, chart) lives in
 * scripts/demo.ts and is imported only when the command runs, so the other commands
 * never load it; its flags are parsed by lib/cli/demo-args.ts, as `npm run demo` does.
 */
import type { CommandIo } from './command-io.js';
import { DEMO_HELP, parseDemoArgs } from './demo-args.js';

export { DEMO_HELP } from './demo-args.js';

export async function demoCommand(argv: string[], io: CommandIo): Promise<number> {
  const options = parseDemoArgs(argv);
  if (options === undefined) {
    io.out(DEMO_HELP);
    return 0;
  }
  // Compiled to build/scripts/demo.js next to build/lib; loaded only now (etcd-dev, backends).
  const { runDemo } = await import('../../scripts/demo.js');
  return runDemo(options);
}
