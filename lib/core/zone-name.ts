/**
 * Zone names, as backends' values carry them and callers name their own (zone-aware
 * routing): 1 to 128 characters of letters, digits and `. _ : / -`, which covers cloud
 * zone names (`eu-west-1a`, `europe-west1-b`) and Kubernetes topology labels' values.
 * One rule for every place a zone is read: etcd values, register(), the CLI, options and
 * the ANCHORPOOL_ZONE environment variable.
 */
import { z } from 'zod';

/** The longest zone name. */
export const MAX_ZONE_LENGTH = 128;
/** What a zone may be, as every reason about one says it. */
export const ZONE_RULE = `must be 1 to ${MAX_ZONE_LENGTH} characters of A-Z a-z 0-9 . _ : / -`;
const ZONE_PATTERN = new RegExp(`^[A-Za-z0-9._:/-]{1,${MAX_ZONE_LENGTH}}$`);

export function isZoneName(value: unknown): value is string {
  return typeof value === 'string' && ZONE_PATTERN.test(value);
}

/** A zone name; anything else fails with ZONE_RULE. */
export const zoneNameSchema = z.custom<string>((value) => isZoneName(value), { error: ZONE_RULE });

/** The environment variable that names the caller's zone when the `zone` option is absent. */
export const ZONE_ENVIRONMENT_VARIABLE = 'ANCHORPOOL_ZONE';
