/** How a command talks to the world, so tests can run commands in-process. */
export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  /** Resolves when the user asks to stop (Ctrl-C, SIGTERM); long-running commands wait on it. */
  interrupted: Promise<void>;
  /** Whether stdout is a terminal (live views redraw in place only then). */
  isTTY?: boolean;
}
