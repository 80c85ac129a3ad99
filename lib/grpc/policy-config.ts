/**
 * The anchored_round_robin policy's config, as grpc-js hands it over from a service
 * config's `loadBalancingConfig` entry: parsed and checked here, each bad value refused
 * with its name, its range and what it was.
 */
import type { PickMode } from '../anchor-set.js';
import { DEFAULT_GROWTH_SETTINGS } from '../anchor-growth.js';
import { formatZodError } from '../config.js';
import { outlierDetectionSchema, type OutlierDetectionOptions } from '../pool-config.js';
import { trace, type TypedLoadBalancingConfig } from './experimental.js';
import { POLICY_NAME, resolverLogger } from './resolver.js';

/** The policy's settings, as its config carries them. */
export interface AnchoredRoundRobinSettings {
  /** undefined: no health checks. */
  readonly healthServiceName?: string | undefined;
  /** undefined: no outlier ejection. */
  readonly outlierDetection?: Required<OutlierDetectionOptions> | undefined;
  /** The anchors' maximum age before a make-before-break refresh (a key's maxAgeSeconds wins); 0: off. */
  readonly anchorMaxAgeMillis?: number;
  readonly pick?: PickMode;
  /**
   * Calls one anchor (connection) carries at once, the health stream included; beyond it
   * calls go to other anchors or wait in the channel, and a key with `maxAnchors` opens
   * more. undefined: no cap (grpc-js queues streams over the server's limit on the connection).
   */
  readonly maxCallsPerAnchor?: number | undefined;
  /** How long a key's extra anchors must stay under half their capacity before one drains back. */
  readonly extraAnchorIdleMillis?: number;
}

const MAX_INT32 = 2_147_483_647;

function integerSetting(config: Record<string, unknown>, name: string, min: number, fallback: number): number {
  const value = config[name] ?? fallback;
  if (!(Number.isInteger(value) && (value as number) >= min && (value as number) <= MAX_INT32)) {
    throw new Error(`${POLICY_NAME}: ${name} must be an integer from ${min} to ${MAX_INT32}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/**
 * The policy's config:
 * `{"anchored_round_robin":{"healthCheckConfig":{"serviceName":"…"},"outlierDetection":{…},
 * "anchorMaxAgeMillis":…,"pick":"least-loaded","maxCallsPerAnchor":…,"extraAnchorIdleMillis":…}}`.
 * grpc-js drops a top-level `healthCheckConfig` from service configs, so the policy reads
 * its health checks from its own entry; `outlierDetection` takes the pool's options
 * (OutlierDetectionOptions), validated by the same schema.
 */
export class AnchoredRoundRobinConfig implements TypedLoadBalancingConfig {
  readonly healthServiceName: string | undefined;
  readonly outlierDetection: Required<OutlierDetectionOptions> | undefined;
  readonly anchorMaxAgeMillis: number;
  readonly pick: PickMode;
  readonly maxCallsPerAnchor: number | undefined;
  readonly extraAnchorIdleMillis: number;

  constructor(settings: AnchoredRoundRobinSettings = {}) {
    this.healthServiceName = settings.healthServiceName;
    this.outlierDetection = settings.outlierDetection;
    this.anchorMaxAgeMillis = settings.anchorMaxAgeMillis ?? 0;
    this.pick = settings.pick ?? 'round-robin';
    this.maxCallsPerAnchor = settings.maxCallsPerAnchor;
    this.extraAnchorIdleMillis = settings.extraAnchorIdleMillis ?? DEFAULT_GROWTH_SETTINGS.idleMillis;
  }
  getLoadBalancerName(): string {
    return POLICY_NAME;
  }
  toJsonObject(): object {
    return {
      [POLICY_NAME]: {
        ...(this.healthServiceName !== undefined && { healthCheckConfig: { serviceName: this.healthServiceName } }),
        ...(this.outlierDetection !== undefined && { outlierDetection: this.outlierDetection }),
        ...(this.anchorMaxAgeMillis > 0 && { anchorMaxAgeMillis: this.anchorMaxAgeMillis }),
        ...(this.pick !== 'round-robin' && { pick: this.pick }),
        ...(this.maxCallsPerAnchor !== undefined && { maxCallsPerAnchor: this.maxCallsPerAnchor }),
        ...(this.extraAnchorIdleMillis !== DEFAULT_GROWTH_SETTINGS.idleMillis && { extraAnchorIdleMillis: this.extraAnchorIdleMillis }),
      },
    };
  }
  /**
   * grpc-js treats a config that throws here as no config at all and silently falls back
   * to pick_first (one connection, no anchors): the reason is logged as a warning first.
   */
  static createFromJson(json: unknown): AnchoredRoundRobinConfig {
    try {
      return AnchoredRoundRobinConfig.#parse((json ?? {}) as Record<string, unknown>);
    } catch (error) {
      const message = (error as Error).message;
      trace(POLICY_NAME, `invalid config: ${message}`);
      resolverLogger()?.warn({ config: json }, `${message}; grpc-js ignores the channel's service config and uses pick_first`);
      throw error;
    }
  }

  static #parse(config: Record<string, unknown>): AnchoredRoundRobinConfig {
    const pick = config.pick ?? 'round-robin';
    if (pick !== 'round-robin' && pick !== 'least-loaded') throw new Error(`${POLICY_NAME}: pick must be "round-robin" or "least-loaded", got ${JSON.stringify(pick)}`);
    const anchorMaxAgeMillis = integerSetting(config, 'anchorMaxAgeMillis', 0, 0);
    const extraAnchorIdleMillis = integerSetting(config, 'extraAnchorIdleMillis', 0, DEFAULT_GROWTH_SETTINGS.idleMillis);
    let serviceName: string | undefined;
    const health = config.healthCheckConfig;
    if (health !== undefined && health !== null) {
      const name = (health as { serviceName?: unknown }).serviceName ?? '';
      if (typeof health !== 'object' || typeof name !== 'string') {
        throw new Error(`${POLICY_NAME}: healthCheckConfig must be {"serviceName": string}, got ${JSON.stringify(health)}`);
      }
      serviceName = name;
    }
    let maxCallsPerAnchor: number | undefined;
    if (config.maxCallsPerAnchor !== undefined && config.maxCallsPerAnchor !== null) {
      // The health stream is one of the connection's streams: with checks on, one call must still fit.
      maxCallsPerAnchor = integerSetting(config, 'maxCallsPerAnchor', serviceName === undefined ? 1 : 2, 0);
    }
    let outliers: Required<OutlierDetectionOptions> | undefined;
    if (config.outlierDetection !== undefined && config.outlierDetection !== null) {
      const parsed = outlierDetectionSchema.safeParse(config.outlierDetection);
      if (!parsed.success) throw new Error(`${POLICY_NAME}: invalid outlierDetection: ${formatZodError(parsed.error)}`);
      outliers = parsed.data;
    }
    return new AnchoredRoundRobinConfig({ healthServiceName: serviceName, outlierDetection: outliers, anchorMaxAgeMillis, pick, maxCallsPerAnchor, extraAnchorIdleMillis });
  }
}

