/**
 * The anchored_round_robin policy's config, as grpc-js hands it over from a service
 * config's `loadBalancingConfig` entry. It takes exactly the anchor options of
 * `createPool()` and `registerAnchorpool()` (lib/anchors/anchor-options.ts), under the same
 * names, with durations as `…Millis` integers:
 * `{"anchored_round_robin":{"maxStreamsPerAnchor":100,"pick":"least-loaded","healthCheck":{"serviceName":""}}}`.
 */
import { anchorOptionsSchema, type AnchorOptions, type ResolvedAnchorOptions } from '../anchors/anchor-options.js';
import { formatZodError } from '../core/option-schema.js';
import { ConfigError } from '../core/errors.js';
import { trace, type TypedLoadBalancingConfig } from '../grpc-js/experimental.js';

export const POLICY_NAME = 'anchored_round_robin';

/** Parses the policy's options; a ConfigError names each bad value, its path and what was wrong. */
export function parsePolicyOptions(json: unknown): ResolvedAnchorOptions {
  const parsed = anchorOptionsSchema.safeParse(json ?? {});
  if (!parsed.success) throw new ConfigError(`invalid ${POLICY_NAME} config: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

export class AnchoredRoundRobinConfig implements TypedLoadBalancingConfig {
  /** Every option with its default filled in. */
  readonly options: ResolvedAnchorOptions;
  /** The options as written, without defaults: what toJsonObject() gives back. */
  readonly given: AnchorOptions;

  constructor(given: AnchorOptions = {}) {
    this.options = parsePolicyOptions(given);
    this.given = given;
  }
  getLoadBalancerName(): string {
    return POLICY_NAME;
  }
  toJsonObject(): object {
    return { [POLICY_NAME]: this.given };
  }
  /**
   * grpc-js treats a config that throws here as no config at all and silently falls back
   * to pick_first (one connection, no anchors); the resolver warns about such a config
   * through the channel's logger when it is created (resolver.ts).
   */
  static createFromJson(json: unknown): AnchoredRoundRobinConfig {
    try {
      return new AnchoredRoundRobinConfig((json ?? {}) as AnchorOptions);
    } catch (error) {
      trace(POLICY_NAME, (error as Error).message);
      throw error;
    }
  }
}
