/**
 * The EndpointEntry record and the parser for etcd values. Three value forms are accepted:
 *   1. native JSON   {"addr":"10.0.0.5:50051","anchors":4,"maxAnchors":8,"maxAgeSeconds":300,"zone":"eu-west-1a","metadata":{…}}
 *   2. etcd's Go endpoints.Manager JSON  {"Op":0,"Addr":"10.0.0.5:50051","Metadata":{…}}
 *      (field names match case-insensitively, as Go's encoding/json does; anchors,
 *      maxAnchors, maxAgeSeconds and zone come from Metadata when present; a top-level
 *      field of the same name wins)
 *   3. plain text    10.0.0.5:50051   or   10.0.0.5:50051#4   or   10.0.0.5:50051#2-8 (N, up to 8),
 *      each optionally followed by @zone: 10.0.0.5:50051#4@eu-west-1a
 * Parsing never throws: it returns an EndpointEntry or a readable reason.
 */
import { z } from 'zod';
import { parseAddress } from './address.js';
import { MAX_TIMER_SECONDS } from '../core/timer-limit.js';
import { isZoneName, MAX_ZONE_LENGTH, ZONE_RULE } from '../core/zone-name.js';

export type EndpointFormat = 'json' | 'go' | 'text' | 'static';

export interface EndpointEntry {
  /** Identity of the entry: the etcd key, or `static/<i>` for pass:/// entries. */
  readonly key: string;
  readonly addr: string;
  readonly anchors: number;
  /** The most anchors the key may open when all of its are full (load-driven); absent: exactly `anchors`. */
  readonly maxAnchors?: number;
  /** The anchors' maximum age for this key (a refresh, make before break); 0: never. Absent: the pool's default. */
  readonly maxAgeSeconds?: number;
  /** The zone the backend runs in (zone-aware routing); absent: the key counts as in every zone. */
  readonly zone?: string;
  readonly metadata?: unknown;
  readonly format: EndpointFormat;
}

export interface ParseLimits {
  readonly defaultAnchors: number;
  readonly maxAnchorsPerKey: number;
  readonly maxValueBytes: number;
}

export const DEFAULT_LIMITS: ParseLimits = { defaultAnchors: 1, maxAnchorsPerKey: 64, maxValueBytes: 64 * 1024 };

export type ParseResult = { ok: true; endpoint: EndpointEntry } | { ok: false; reason: string };

const MAX_METADATA_DEPTH = 32;
const NATIVE_FIELDS = new Set(['addr', 'anchors', 'maxAnchors', 'maxAgeSeconds', 'zone', 'metadata']);
/** The longest maximum age: Node's timer limit, in seconds. */
export const MAX_AGE_SECONDS_LIMIT = MAX_TIMER_SECONDS;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function invalid(reason: string): ParseResult {
  return { ok: false, reason };
}

const addressSchema = z.string({ error: 'must be a string' }).superRefine((value, ctx) => {
  const parsed = parseAddress(value);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
});

/** A backend's zone: the one rule of lib/core/zone-name.ts, as a string schema for values and register(). */
export const zoneSchema = z.string({ error: ZONE_RULE }).refine(isZoneName, { error: ZONE_RULE });

function anchorsSchema(max: number) {
  return z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(1, { error: `must be between 1 and ${max}` })
    .max(max, { error: `must be between 1 and ${max}` });
}

function depthWithin(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (limit === 0) return false;
  const children = Array.isArray(value) ? value : Object.values(value);
  return children.every((child) => depthWithin(child, limit - 1));
}

const maxAgeSchema = z
  .number({ error: 'must be a number' })
  .min(0, { error: `must be from 0 to ${MAX_AGE_SECONDS_LIMIT} seconds` })
  .max(MAX_AGE_SECONDS_LIMIT, { error: `must be from 0 to ${MAX_AGE_SECONDS_LIMIT} seconds` });

const schemaCache = new Map<
  number,
  z.ZodType<{ addr: string; anchors?: number | undefined; maxAnchors?: number | undefined; maxAgeSeconds?: number | undefined; zone?: string | undefined; metadata?: unknown; op?: number | undefined }>
>();

function valueSchema(maxAnchors: number) {
  let schema = schemaCache.get(maxAnchors);
  if (schema === undefined) {
    const anchors = anchorsSchema(maxAnchors);
    schema = z
      .object({
        addr: addressSchema,
        anchors: anchors.optional(),
        maxAnchors: anchors.optional(),
        maxAgeSeconds: maxAgeSchema.optional(),
        zone: zoneSchema.optional(),
        metadata: z
          .unknown()
          .refine((m) => depthWithin(m, MAX_METADATA_DEPTH), { error: `is nested deeper than ${MAX_METADATA_DEPTH} levels` })
          .optional(),
        // Go's Op is a uint8; a PUT always means add/update whatever it says.
        op: z.number({ error: 'must be a number' }).int().min(0).max(255).optional(),
      })
      .superRefine((value, ctx) => {
        const fromMetadata = metadataField(value.metadata, 'anchors');
        if (value.anchors === undefined && fromMetadata !== undefined) {
          for (const issue of anchors.safeParse(fromMetadata).error?.issues ?? []) {
            ctx.addIssue({ code: 'custom', message: issue.message, path: ['metadata', 'anchors'] });
          }
        }
        const maxFromMetadata = metadataField(value.metadata, 'maxAnchors');
        if (value.maxAnchors === undefined && maxFromMetadata !== undefined) {
          for (const issue of anchors.safeParse(maxFromMetadata).error?.issues ?? []) {
            ctx.addIssue({ code: 'custom', message: issue.message, path: ['metadata', 'maxAnchors'] });
          }
        }
        const ageFromMetadata = metadataField(value.metadata, 'maxAgeSeconds');
        if (value.maxAgeSeconds === undefined && ageFromMetadata !== undefined) {
          for (const issue of maxAgeSchema.safeParse(ageFromMetadata).error?.issues ?? []) {
            ctx.addIssue({ code: 'custom', message: issue.message, path: ['metadata', 'maxAgeSeconds'] });
          }
        }
        const zoneFromMetadata = metadataField(value.metadata, 'zone');
        if (value.zone === undefined && zoneFromMetadata !== undefined) {
          for (const issue of zoneSchema.safeParse(zoneFromMetadata).error?.issues ?? []) {
            ctx.addIssue({ code: 'custom', message: issue.message, path: ['metadata', 'zone'] });
          }
        }
      });
    schemaCache.set(maxAnchors, schema);
  }
  return schema;
}

/** Go's encoding/json prefers an exact field match, then any case-insensitive one. */
function goField(object: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(object)) {
    if (key.toLowerCase() === lower) return object[key];
  }
  return undefined;
}

/** One readable line per value: `anchors: must be between 1 and 64; addr: missing port …`. */
function oneLine(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join('.')}: ${issue.message}`))
    .join('; ');
}

function metadataField(metadata: unknown, name: 'anchors' | 'maxAnchors' | 'maxAgeSeconds' | 'zone'): unknown {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return undefined;
  return (metadata as Record<string, unknown>)[name];
}

function parseJson(key: string, text: string, limits: ParseLimits): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return invalid(`value is not valid JSON (${(err as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return invalid('JSON value must be an object with an "addr" field');
  }
  const object = raw as Record<string, unknown>;
  const format: EndpointFormat = Object.keys(object).every((k) => NATIVE_FIELDS.has(k)) ? 'json' : 'go';
  const candidate = {
    addr: goField(object, 'addr'),
    anchors: goField(object, 'anchors'),
    maxAnchors: goField(object, 'maxAnchors'),
    maxAgeSeconds: goField(object, 'maxAgeSeconds'),
    zone: goField(object, 'zone'),
    metadata: goField(object, 'metadata'),
    op: goField(object, 'op'),
  };
  if (candidate.addr === undefined) return invalid('JSON value has no "addr" (or Go "Addr") field');
  const parsed = valueSchema(limits.maxAnchorsPerKey).safeParse(candidate);
  if (!parsed.success) return invalid(oneLine(parsed.error));
  const { addr, metadata } = parsed.data;
  const anchors = parsed.data.anchors ?? (metadataField(metadata, 'anchors') as number | undefined) ?? limits.defaultAnchors;
  const maxAgeSeconds = parsed.data.maxAgeSeconds ?? (metadataField(metadata, 'maxAgeSeconds') as number | undefined);
  const maxAnchors = parsed.data.maxAnchors ?? (metadataField(metadata, 'maxAnchors') as number | undefined);
  const zone = parsed.data.zone ?? (metadataField(metadata, 'zone') as string | undefined);
  if (maxAnchors !== undefined && maxAnchors < anchors) return invalid(`maxAnchors: must be at least anchors (${anchors}), got ${maxAnchors}`);
  const endpoint: EndpointEntry = {
    key,
    addr,
    anchors,
    ...(maxAnchors !== undefined && maxAnchors > anchors && { maxAnchors }),
    ...(maxAgeSeconds !== undefined && { maxAgeSeconds }),
    ...(zone !== undefined && { zone }),
    ...(metadata !== undefined && metadata !== null && { metadata }),
    format,
  };
  return { ok: true, endpoint };
}

/** The text form's reason for a bad zone: the rule, and what was written (or its length, when long). */
function zoneReason(zoneText: string): string {
  const got = zoneText.length <= MAX_ZONE_LENGTH ? JSON.stringify(zoneText) : `${zoneText.length} characters`;
  return `zone: ${ZONE_RULE} (got ${got} after "@")`;
}

export type AddressWithAnchors = { ok: true; addr: string; anchors: number; maxAnchors?: number; zone?: string } | { ok: false; reason: string };

/**
 * The text form, also used inside pass:/// targets: `host:port`, `host:port#N`, or
 * `host:port#N-M` (N anchors, growing up to M when all are full), each optionally
 * followed by `@zone` (the zone is what follows the last `@`).
 */
export function parseAddressWithAnchors(input: string, limits: ParseLimits): AddressWithAnchors {
  // A unix socket's path may hold '@': such an address names no zone in the text form (use JSON).
  const at = input.startsWith('unix:') ? -1 : input.lastIndexOf('@');
  if (at === -1) return parseAnchorsPart(input, limits);
  const parsed = parseAnchorsPart(input.slice(0, at), limits);
  if (!parsed.ok) return parsed;
  const zone = input.slice(at + 1);
  return isZoneName(zone) ? { ...parsed, zone } : { ok: false, reason: zoneReason(zone) };
}

function parseAnchorsPart(text: string, limits: ParseLimits): AddressWithAnchors {
  const hash = text.lastIndexOf('#');
  const addrText = hash === -1 ? text : text.slice(0, hash);
  const parsedAddr = parseAddress(addrText);
  if (!parsedAddr.ok) return parsedAddr;
  if (hash === -1) return { ok: true, addr: addrText, anchors: limits.defaultAnchors };
  const anchorsText = text.slice(hash + 1);
  const match = /^([0-9]+)(?:-([0-9]+))?$/.exec(anchorsText);
  if (match === null) {
    return { ok: false, reason: `anchor count ${JSON.stringify(anchorsText)} after "#" must be an integer N or a range N-M` };
  }
  for (const text of [match[1]!, match[2]]) {
    if (text === undefined) continue;
    const n = Number(text);
    if (n < 1 || n > limits.maxAnchorsPerKey) return { ok: false, reason: `anchor count ${text} must be between 1 and ${limits.maxAnchorsPerKey}` };
  }
  const anchors = Number(match[1]);
  const max = match[2] === undefined ? anchors : Number(match[2]);
  if (max < anchors) return { ok: false, reason: `anchor range ${anchorsText}: the most anchors (${max}) is below the floor (${anchors})` };
  return max > anchors ? { ok: true, addr: addrText, anchors, maxAnchors: max } : { ok: true, addr: addrText, anchors };
}

/**
 * Parses one etcd value. The size check runs on the raw bytes before any decoding,
 * so an oversized value is rejected without being copied.
 */
export function parseEndpointValue(key: string, value: Uint8Array, limits: ParseLimits = DEFAULT_LIMITS): ParseResult {
  if (value.byteLength > limits.maxValueBytes) {
    return invalid(`value is ${value.byteLength} bytes, over the limit of ${limits.maxValueBytes}`);
  }
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return invalid('value is not valid UTF-8');
  }
  const trimmed = text.trim();
  if (trimmed.length === 0) return invalid('value is empty');
  if (trimmed.startsWith('{') || trimmed.startsWith('"') || trimmed.startsWith('[{')) return parseJson(key, trimmed, limits);
  const parsed = parseAddressWithAnchors(trimmed, limits);
  if (!parsed.ok) return parsed;
  const endpoint: EndpointEntry = {
    key,
    addr: parsed.addr,
    anchors: parsed.anchors,
    ...(parsed.maxAnchors !== undefined && { maxAnchors: parsed.maxAnchors }),
    ...(parsed.zone !== undefined && { zone: parsed.zone }),
    format: 'text',
  };
  return { ok: true, endpoint };
}

/** Whether two endpoints describe the same desired state (identity, address, anchors, zone, metadata). */
export function sameEndpoint(a: EndpointEntry, b: EndpointEntry): boolean {
  return (
    a.key === b.key &&
    a.addr === b.addr &&
    a.anchors === b.anchors &&
    a.maxAnchors === b.maxAnchors &&
    a.maxAgeSeconds === b.maxAgeSeconds &&
    a.zone === b.zone &&
    a.format === b.format &&
    JSON.stringify(a.metadata) === JSON.stringify(b.metadata)
  );
}
