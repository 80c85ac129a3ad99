/**
 * The logger contract: pino-compatible `(fields, message)` methods, so a pino or
 * bunyan logger can be passed as is. The library is silent unless given a logger; the
 * CLI uses consoleLogger(), one readable line per event on stderr.
 * Callers never put secrets (passwords, key material, tokens) into fields or messages.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

export type LogLevel = keyof Logger;
const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];

const ignore = (): void => {};

export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };

function formatFields(fields: LogFields): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`)
    .join(' ');
}

/** Readable lines (`12:00:01 warn  message key=value …`) for levels at or above `level`. */
export function consoleLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Logger {
  const min = LEVELS.indexOf(level);
  const at = (name: LogLevel) =>
    LEVELS.indexOf(name) < min
      ? ignore
      : (fields: LogFields, message: string) => {
          const time = new Date().toISOString().slice(11, 19);
          const rest = formatFields(fields);
          write(`${time} ${name.padEnd(5)} ${message}${rest ? `  ${rest}` : ''}`);
        };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
