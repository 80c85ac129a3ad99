/**
 * What every options schema of anchorpool shares: the `…Millis` field, the check that a
 * hand-written options interface agrees with its zod schema, and the one format of
 * validation errors (each problem with its path).
 */
import { z } from 'zod';
import { MAX_TIMER_MILLIS } from './timer-limit.js';

/** A `…Millis` option: an integer from `min` to Node's timer limit. */
export const millis = (min = 1) => z.number().int().min(min).max(MAX_TIMER_MILLIS);

/**
 * Compile-time check that a hand-written options interface and the input of its zod
 * schema agree: the same keys, each key's type assignable both ways. `true` when they
 * do; otherwise an object naming the keys that differ, which shows in the type error.
 * Nested option objects are compared as wholes, so check their own interfaces too.
 */
export type OptionsAgree<Interface, SchemaInput> = [Disagreeing<Interface, SchemaInput>] extends [never]
  ? true
  : { keysThatDiffer: Disagreeing<Interface, SchemaInput> };
type Disagreeing<A, B> =
  | Exclude<keyof A, keyof B>
  | Exclude<keyof B, keyof A>
  | { [K in keyof A & keyof B]-?: [A[K]] extends [B[K]] ? ([B[K]] extends [A[K]] ? never : K) : K }[keyof A & keyof B];

/** Every problem of a failed parse, `path: message`, joined by `; `. */
export function formatZodError(error: z.ZodError): string {
  return error.issues
    .flatMap((issue) => explained(issue, []))
    .map((issue) => `${issue.path.length === 0 ? '(options)' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

type Issue = z.core.$ZodIssue;

/**
 * A value that fits no member of a union (`false | {…}`) is explained by the member it
 * got furthest into, an object's field (`liveness.quietMillis: …`), not "Invalid input".
 */
function explained(issue: Issue, prefix: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const path = [...prefix, ...issue.path];
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ path, message: issue.message }];
  const depth = (issues: Issue[]): number => Math.max(...issues.map((i) => i.path.length));
  const deepest = issue.errors.reduce((best, issues) => (depth(issues) > depth(best) ? issues : best));
  if (depth(deepest) === 0) return [{ path, message: issue.message }];
  return deepest.flatMap((inner) => explained(inner, path));
}
