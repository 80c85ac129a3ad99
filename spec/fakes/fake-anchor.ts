/**
 * FakeAnchor: an Anchor whose transport is the test. It never connects; the test drives
 * its state with drive(), and it records start() and shutdown() calls. It can take
 * leases (it has a marker `channel` and no client stubs), so the same fake serves the
 * anchor set, the lease broker and the pool (through createPoolWithAnchors).
 *
 * fakeAnchors() returns the factory to inject and the list of every anchor it made, in
 * creation order, so a spec can find "the anchor of slot (key, index)" after a
 * reconcile and check that a survivor is the very same object.
 */
import type * as grpc from '@grpc/grpc-js';
import { Anchor, type AnchorHealth, type AnchorListener, type AnchorSpec, type AnchorState } from '../../lib/anchors/anchor.js';
import type { AnchorFactory } from '../../lib/anchors/anchor-set.js';
import type { LeaseAnchor } from '../../lib/pool/lease.js';

export type DrivenState = Exclude<AnchorState, 'SHUTDOWN'>;

export interface FakeAnchorOptions {
  /** Lease cap of every anchor made (the pool's maxStreamsPerAnchor does not reach fakes). Default 100. */
  readonly maxLeases?: number;
  /** State the anchor reports from start(), as a transport that begins connecting would. Default: stays IDLE. */
  readonly startState?: DrivenState;
  /** The anchor is health-checked (one slot kept for the health stream; leases only while SERVING). Default false. */
  readonly healthChecked?: boolean;
}

export class FakeAnchor extends Anchor implements LeaseAnchor {
  /** A marker object, so a spec can check that a lease exposes its anchor's channel. */
  readonly channel: grpc.Channel;
  /** The spec's generation: 0 for a slot's first anchor, more for a refresh's replacements. */
  readonly generation: number;
  starts = 0;
  shutdowns = 0;
  readonly #startState: DrivenState | undefined;

  constructor(spec: AnchorSpec, listener: AnchorListener, options: FakeAnchorOptions = {}) {
    super(spec, options.maxLeases ?? 100, listener, options.healthChecked ?? false);
    this.#startState = options.startState;
    this.generation = spec.generation ?? 0;
    this.channel = { fakeChannelOf: `${spec.key}#${spec.index}` } as unknown as grpc.Channel;
  }

  /** `key#index`, for readable assertions. */
  get label(): string {
    return `${this.key}#${this.index}`;
  }

  start(): void {
    this.starts += 1;
    if (this.#startState !== undefined) this.setState(this.#startState);
  }

  /** The test plays the transport: report `state` as the anchor's new state. */
  drive(state: DrivenState): void {
    this.setState(state);
  }

  /** The test plays the health check: report `health` for the current connection. */
  driveHealth(health: AnchorHealth): void {
    this.setHealth(health);
  }

  client<C extends grpc.Client>(): C {
    throw new Error(`FakeAnchor ${this.label} has no client stubs`);
  }

  protected shutdown(): void {
    this.shutdowns += 1;
  }
}

export interface FakeAnchors {
  readonly factory: AnchorFactory<FakeAnchor>;
  /** Every anchor made, in creation order. */
  readonly created: FakeAnchor[];
  /** The newest anchor made for (key, index) that is not closed. */
  live(key: string, index: number): FakeAnchor | undefined;
  /** Every anchor made and not closed. */
  open(): FakeAnchor[];
  /** Resolves once `count` anchors have been made in all (a pool's source applies its snapshot asynchronously). */
  whenCreated(count: number): Promise<void>;
}

export function fakeAnchors(options: FakeAnchorOptions = {}): FakeAnchors {
  const created: FakeAnchor[] = [];
  const waits: { count: number; resolve: () => void }[] = [];
  const factory: AnchorFactory<FakeAnchor> = (spec, listener) => {
    const anchor = new FakeAnchor(spec, listener, options);
    created.push(anchor);
    for (const wait of [...waits]) {
      if (created.length >= wait.count) {
        waits.splice(waits.indexOf(wait), 1);
        // After the factory returned: the set has not placed the anchor yet.
        queueMicrotask(wait.resolve);
      }
    }
    return anchor;
  };
  return {
    factory,
    created,
    live: (key, index) => created.findLast((a) => a.key === key && a.index === index && !a.closed),
    open: () => created.filter((a) => !a.closed),
    whenCreated: (count) =>
      created.length >= count ? Promise.resolve() : new Promise<void>((resolve) => waits.push({ count, resolve })),
  };
}
