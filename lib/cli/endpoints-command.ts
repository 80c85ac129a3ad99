/** Kept only for the type's old import path while the CLI moves to command-io.ts. */
export type { CommandIo } from './command-io.js';
