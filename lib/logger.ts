/**
 * The logger contract: pino-compatible `(fields, message)` methods, so a pino or
 * bunyan logger can be passed as is. The default prints warnings and errors to
 * stderr and stays quiet otherwise, as a library should.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

function toStderr(level: string) {
  return (fields: LogFields, message: string): void => {
    process.stderr.write(`anchorpool ${level}: ${message} ${JSON.stringify(fields)}\n`);
  };
}

const ignore = (): void => {};

export const stderrLogger: Logger = { debug: ignore, info: ignore, warn: toStderr('warn'), error: toStderr('error') };

export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
