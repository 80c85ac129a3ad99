/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
}
