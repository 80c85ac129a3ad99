import * as grpc from '@grpc/grpc-js';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import * as errors from '../lib/core/errors.js';
import { AcquireTimeoutError, AnchorPoolError, ConfigError, isAnchorPoolError, PoolClosedError } from '../lib/core/errors.js';
import { grpcStatusOf } from '../lib/core/error-status.js';

/** A second installed copy of the package: the same built file, loaded from another path. */
async function loadSecondCopy(t: Test): Promise<typeof errors> {
  const dir = await mkdtemp(join(tmpdir(), 'anchorpool-copy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'errors.js');
  await copyFile(fileURLToPath(new URL('../lib/core/errors.js', import.meta.url)), file);
  return (await import(pathToFileURL(file).href)) as typeof errors;
}

t.test('an error from a second copy of anchorpool is recognised by the first', async (t) => {
  const other = await loadSecondCopy(t);
  t.not(other.AnchorPoolError, AnchorPoolError, 'the copy has classes of its own');
  const err: unknown = new other.PoolClosedError('pool closed');
  t.equal(isAnchorPoolError(err), true, 'isAnchorPoolError');
  t.equal(err instanceof AnchorPoolError, true, 'instanceof AnchorPoolError');
  if (!isAnchorPoolError(err)) return;
  t.equal(err.code, 'ANCHORPOOL_CLOSED');
  t.equal(err.retryable, false);
  t.equal(err.name, 'PoolClosedError');
  t.equal(other.isAnchorPoolError(new ConfigError('x')), true, 'and the other way round');
  t.equal(grpcStatusOf(err), grpc.status.CANCELLED, 'maps to a status like a local error');
});

t.test('instanceof a subclass stays a prototype check', async (t) => {
  const closed = new PoolClosedError('closed');
  t.ok(closed instanceof PoolClosedError);
  t.ok(closed instanceof AnchorPoolError);
  t.ok(closed instanceof Error);
  t.notOk(closed instanceof ConfigError, 'not an instance of a sibling class');
  t.notOk(new ConfigError('x') instanceof PoolClosedError);
  const other = await loadSecondCopy(t);
  t.notOk(new other.PoolClosedError('closed') instanceof PoolClosedError, "another copy's subclass is not this copy's");
  t.ok(closed instanceof other.AnchorPoolError, "but it is the other copy's AnchorPoolError");
});

t.test('the brand is shared, hidden and only on anchorpool errors', async (t) => {
  const brand = Symbol.for('anchorpool.error');
  const err = new AcquireTimeoutError('timeout');
  t.equal((err as unknown as Record<symbol, unknown>)[brand], true);
  t.notOk(Object.keys(err).includes(brand.toString()));
  t.notOk(Object.getOwnPropertySymbols({ ...err }).includes(brand), 'not copied by a spread');
  t.notMatch(JSON.stringify(err), /anchorpool\.error/);
  for (const value of [new Error('plain'), null, undefined, 'ANCHORPOOL_CLOSED', { code: 'ANCHORPOOL_CLOSED' }, 42]) {
    t.equal(isAnchorPoolError(value), false, String(value));
    t.equal(value instanceof AnchorPoolError, false, String(value));
  }
  t.equal(isAnchorPoolError({ [brand]: true, code: 'X' }), true, 'any object carrying the brand counts (that is the contract)');
});

t.test('every exported error class is branded and has a code and a name', async (t) => {
  const classes = (Object.values(errors) as unknown[]).filter(
    (value): value is new (message: string) => AnchorPoolError => typeof value === 'function' && value.prototype instanceof AnchorPoolError,
  );
  t.ok(classes.length >= 12, `${classes.length} error classes`);
  for (const Class of classes) {
    const err = Class.name === 'InvalidTargetError' ? new errors.InvalidTargetError('t', 'r') : new Class('m');
    t.ok(isAnchorPoolError(err), Class.name);
    t.match(err.code, /^ANCHORPOOL_[A-Z_]+$/, Class.name);
    t.equal(err.name, Class.name);
  }
});

t.test('grpcStatusOf: pool errors to gRPC status codes', async (t) => {
  const cases: [unknown, { byDeadline?: boolean } | undefined, grpc.status][] = [
    [new errors.AcquireTimeoutError('t'), undefined, grpc.status.UNAVAILABLE],
    [new errors.AcquireTimeoutError('t'), { byDeadline: false }, grpc.status.UNAVAILABLE],
    [new errors.AcquireTimeoutError('t'), { byDeadline: true }, grpc.status.DEADLINE_EXCEEDED],
    [new errors.NoAnchorAvailableError('n'), undefined, grpc.status.UNAVAILABLE],
    [new errors.NoAnchorAvailableError('n'), { byDeadline: true }, grpc.status.UNAVAILABLE],
    [new errors.TooManyWaitersError('w'), undefined, grpc.status.RESOURCE_EXHAUSTED],
    [new errors.AcquireAbortedError('a'), undefined, grpc.status.CANCELLED],
    [new errors.AcquireAbortedError('a'), { byDeadline: true }, grpc.status.CANCELLED],
    [new errors.PoolClosedError('c'), undefined, grpc.status.CANCELLED],
    [new errors.PoolClosedError('c'), { byDeadline: true }, grpc.status.CANCELLED],
    [new errors.ConfigError('bad'), undefined, grpc.status.INTERNAL],
    [new errors.LeaseReleasedError('r'), undefined, grpc.status.INTERNAL],
    [new Error('plain'), undefined, grpc.status.INTERNAL],
    [new Error('plain'), { byDeadline: true }, grpc.status.INTERNAL],
    ['a string', undefined, grpc.status.INTERNAL],
    [undefined, undefined, grpc.status.INTERNAL],
    [{ [Symbol.for('anchorpool.error')]: true, code: 'toString' }, undefined, grpc.status.INTERNAL],
  ];
  for (const [error, context, expected] of cases) {
    const got = context === undefined ? grpcStatusOf(error) : grpcStatusOf(error, context);
    t.equal(got, expected, `${(error as Error | undefined)?.name ?? String(error)} ${JSON.stringify(context)} → ${grpc.status[expected]}`);
  }
});

t.test('a closed pool is never reported as UNAVAILABLE (clients would retry it)', async (t) => {
  t.not(grpcStatusOf(new PoolClosedError('closed')), grpc.status.UNAVAILABLE);
});
