/**
 * The static source for pass:///host1:port1#N1@zone1,host2:port2#N2: a fixed list, ready
 * as soon as it starts, that never changes. Entry i has the key `static/<i>`, so the
 * same address listed twice is two entries, as two etcd keys would be.
 */
import { PoolClosedError, type AnchorPoolError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ParseLimits } from './endpoint-entry.js';
import { SourceBase } from './source-base.js';
import type { SourceStatus } from './source.js';
import type { StaticTarget } from './target.js';

export class StaticEndpointSource extends SourceBase {
  readonly kind = 'static' as const;
  readonly #target: StaticTarget;
  #timer: NodeJS.Immediate | undefined;

  constructor(target: StaticTarget, limits: ParseLimits, logger: Logger) {
    super(limits, logger, 0);
    this.#target = target;
  }

  protected begin(): void {
    // Deferred so that no event fires synchronously from start().
    this.#timer = setImmediate(() => {
      this.#timer = undefined;
      this.#target.entries.forEach((entry, index) => {
        const { addr, anchors, maxAnchors, zone } = entry;
        this.state.set({
          key: `static/${index}`,
          addr,
          anchors,
          ...(maxAnchors !== undefined && { maxAnchors }),
          ...(zone !== undefined && { zone }),
          format: 'static',
        });
      });
      this.changed('snapshot');
      this.markReady();
    });
  }

  protected async end(): Promise<void> {
    if (this.#timer) clearImmediate(this.#timer);
  }

  protected readyTimeoutError(): AnchorPoolError {
    return new PoolClosedError('the static source was closed before it became ready');
  }

  status(): SourceStatus {
    return {
      kind: 'static',
      target: `pass:///${this.#target.entries.map((e) => `${e.addr}#${e.anchors}${e.maxAnchors === undefined ? '' : `-${e.maxAnchors}`}${e.zone === undefined ? '' : `@${e.zone}`}`).join(',')}`,
      ready: this.isReady,
      connected: true,
      disconnectedSince: null,
      lastError: null,
      revision: 0,
      resyncs: 0,
      lastResync: null,
      endpoints: this.state.endpoints.size,
      invalid: 0,
    };
  }
}
