/**
 * Calls that provably never left the client. The pool's anchor channels mark the status
 * of a call that failed at its pick (its anchor's connection was not READY: just after a
 * GOAWAY, or a reconnect the backend refused) with one metadata entry. Nothing of such a
 * call reached a server, so it is safe to run again on another anchor, whatever the
 * method does: pool.client() does so by itself, and callers on manual leases can tell by
 * `isNeverSent(error)`.
 */
import * as grpc from '@grpc/grpc-js';

/** The status metadata entry that marks a call that never left the client. */
export const NEVER_SENT_KEY = 'anchorpool-never-sent';

/** A copy of `status` that carries the mark. */
export function markNeverSent<S extends { metadata: grpc.Metadata }>(status: S): S {
  const metadata = status.metadata.clone();
  metadata.set(NEVER_SENT_KEY, '1');
  return { ...status, metadata };
}

/**
 * True when a failed call (a grpc-js ServiceError or StatusObject) never reached a
 * server: it failed before its stream was opened, on an anchor that had lost its
 * connection. Such a call can be run again on another lease, even if it is not idempotent.
 */
export function isNeverSent(error: unknown): boolean {
  const metadata = (error as { metadata?: unknown } | null | undefined)?.metadata;
  return metadata instanceof grpc.Metadata && metadata.get(NEVER_SENT_KEY).length > 0;
}
