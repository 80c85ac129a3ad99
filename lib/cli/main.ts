/** The `anchorpool` command: dispatches to a subcommand; usage errors exit with 2. */
import type { CommandIo } from './command-io.js';
import { STATUS_HELP, statusCommand } from './status-command.js';
import { WATCH_HELP, watchCommand } from './watch-command.js';
import { REGISTER_HELP, registerCommand } from './register-command.js';
import { UsageError } from './usage-error.js';

const HELP = `usage: anchorpool <command> [options]

commands:
  status       one snapshot: keys, anchors (--connect dials them), invalid keys, revision
  watch        the same view, live, as etcd and the anchors change
  register     register a backend under a prefix on a kept-alive lease until stopped

Run "anchorpool <command> --help" for the options of a command.`;

const commands: Record<string, { run: (argv: string[], io: CommandIo) => Promise<number>; help: string }> = {
  status: { run: statusCommand, help: STATUS_HELP },
  watch: { run: watchCommand, help: WATCH_HELP },
  register: { run: registerCommand, help: REGISTER_HELP },
};

export async function main(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    io.err(`anchorpool: unknown command ${JSON.stringify(name)}\n\n${HELP}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    // parseArgs throws TypeErrors with an ERR_PARSE_ARGS_* code for bad flags.
    const code = (err as { code?: string }).code ?? '';
    if (err instanceof UsageError || code.startsWith('ERR_PARSE_ARGS')) {
      io.err(`anchorpool ${name}: ${(err as Error).message}\n\n${command.help}`);
      return 2;
    }
    throw err;
  }
}

export function processIo(): CommandIo {
  // Signal handlers only once a command waits for them: until then Ctrl-C ends the process as usual.
  let interrupted: Promise<void> | undefined;
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    get interrupted() {
      interrupted ??= new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      return interrupted;
    },
    isTTY: process.stdout.isTTY === true,
  };
}
