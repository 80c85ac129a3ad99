/**
 * Where the anchored_round_robin policy's calls go once picked: each anchor's replaying
 * view (refused-stream-replay.ts), the call counts they report to (call-counts.ts),
 * outlier ejection fed by their outcomes, and the anchors' latency estimates for
 * peak-ewma picks. Views and counts are made anew whenever what they carry changes (the
 * pick mode, the stream cap, the ejection settings), so a call counts off on the counts
 * it counted on.
 */
import type { AnchorSet } from '../anchors/anchor-set.js';
import type { OutlierDetectionOptions } from '../anchors/anchor-options.js';
import { OutlierEjection } from '../anchors/outlier-ejection.js';
import type { SubchannelAnchor } from './subchannel-anchor.js';
import { CallCounts } from './call-counts.js';
import { ReplayingSubchannel } from '../grpc-js/refused-stream-replay.js';
import { isFailure } from '../core/call-outcome.js';
import type { status as Status } from '@grpc/grpc-js';

export interface CallRoutingHooks {
  /** An entry was ejected or returned: eligibility changed. */
  ejectionChanged(): void;
  /** Another anchor for a refused stream, if any. */
  another(refused: SubchannelAnchor): SubchannelAnchor | undefined;
  trace(text: string): void;
}

export class CallRouting {
  readonly #anchors: AnchorSet<SubchannelAnchor>;
  readonly #hooks: CallRoutingHooks;
  #views = new WeakMap<SubchannelAnchor, ReplayingSubchannel<SubchannelAnchor>>();
  #counts: CallCounts<SubchannelAnchor>;
  #ejection: OutlierEjection<SubchannelAnchor> | undefined;
  /** The settings #ejection runs with, as JSON: equal settings keep it (and its history). */
  #ejectionSettings = '';
  /** Calls' latencies feed the anchors' estimates (pick: 'peak-ewma'). */
  #timed = false;

  constructor(anchors: AnchorSet<SubchannelAnchor>, hooks: CallRoutingHooks) {
    this.#anchors = anchors;
    this.#hooks = hooks;
    this.#counts = this.#newCounts();
  }

  get counts(): CallCounts<SubchannelAnchor> {
    return this.#counts;
  }

  /** The view a picked call runs on. */
  viewOf(anchor: SubchannelAnchor): ReplayingSubchannel<SubchannelAnchor> {
    let view = this.#views.get(anchor);
    if (view === undefined) {
      view = new ReplayingSubchannel(anchor.subchannel, anchor, this.#counts);
      this.#views.set(anchor, view);
    }
    return view;
  }

  /** Starts, changes or stops outlier ejection; other settings keep the running one and its history. */
  configureEjection(settings: Required<OutlierDetectionOptions> | undefined): void {
    const fingerprint = settings === undefined ? '' : JSON.stringify(settings);
    if (fingerprint === this.#ejectionSettings) return;
    this.#ejection?.close();
    this.#ejection = undefined;
    this.#ejectionSettings = fingerprint;
    if (settings !== undefined) {
      this.#ejection = new OutlierEjection(settings, this.#anchors, {
        ejected: (e) => {
          this.#hooks.trace(`${e.key} ejected until ${new Date(e.until).toISOString()}: ${e.reason}, ejection ${e.times}`);
          this.#hooks.ejectionChanged();
        },
        returned: (key) => {
          this.#hooks.trace(`${key} back in rotation after its ejection`);
          this.#hooks.ejectionChanged();
        },
      });
      this.#ejection.setEntries(new Map([...this.#anchors.active()].map((a) => [a.key, a.address])));
    }
    this.renew();
  }

  /** The entries ejection judges: key → address. */
  setEntries(entries: ReadonlyMap<string, string>): void {
    this.#ejection?.setEntries(entries);
  }

  /** Whether calls' latencies are measured (pick: 'peak-ewma'); takes effect with renew(). */
  setTimed(timed: boolean): void {
    this.#timed = timed;
  }

  /** New views and counts: calls started from now on carry the current settings. */
  renew(): void {
    this.#views = new WeakMap();
    this.#counts = this.#newCounts();
  }

  close(): void {
    this.configureEjection(undefined);
  }

  #newCounts(): CallCounts<SubchannelAnchor> {
    const ejection = this.#ejection;
    return new CallCounts<SubchannelAnchor>({
      ...(ejection !== undefined && { outcome: (anchor, code) => ejection.record(anchor, code) }),
      ...(this.#timed && {
        latency: (anchor: SubchannelAnchor, code: Status, millis: number) => anchor.latency.observe(millis, performance.now(), isFailure(code)),
      }),
      moved: (from, to) => this.#hooks.trace(`${from.key}#${from.index} refused a stream: it runs again on ${to.key}#${to.index}`),
      another: (refused) => this.#hooks.another(refused),
    });
  }
}
