/**
 * HealthWatch: one grpc.health.v1 `Health/Watch` stream (gRFC A17) on one anchor's
 * channel, so the status is that of the very connection the anchor's leases use (behind
 * an L4 balancer, each connection may reach another server). It reports every status the
 * backend sends; a stream that fails is reported NOT_SERVING (as a server's UNKNOWN, since
 * gRFC A17 counts anything but SERVING as unhealthy) and opened again after a
 * jittered backoff, for as long as the watch runs; UNIMPLEMENTED (the backend has no
 * health service) ends the watch and is reported once.
 *
 * The owner starts it when its connection becomes READY and stops it when it leaves
 * READY or closes; events of a stream it stopped are never reported.
 * The proto comes from grpc-health-check, the package grpc-node publishes for the
 * official grpc.health.v1 service (its server half is what backends register).
 */
import * as grpc from '@grpc/grpc-js';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { service as healthService } from 'grpc-health-check';
import type { Logger } from '../core/logger.js';

export type HealthStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';
/** What the watch reports: a failed stream and a server's UNKNOWN are NOT_SERVING (gRFC A17). */
export type ReportedHealth = Exclude<HealthStatus, 'UNKNOWN'>;

export interface HealthWatchSettings {
  /** The service whose health is asked for; '' is the whole server. */
  readonly serviceName: string;
  /** Backoff between attempts to open the stream again (decorrelated jitter between the two). */
  readonly retryInitialMillis: number;
  readonly retryMaxMillis: number;
}

export interface HealthReport {
  /** The status to use: what the backend sent, or NOT_SERVING while the stream is down (detail says why). */
  status(status: ReportedHealth, detail: string | null): void;
  /** The backend has no health service: the watch has ended. */
  unimplemented(detail: string): void;
}

interface WatchResponse {
  status?: string;
}

type HealthClient = grpc.Client & {
  watch(request: { service: string }, options?: grpc.CallOptions): grpc.ClientReadableStream<WatchResponse>;
};

const HealthClientConstructor = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health') as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ClientOptions,
) => HealthClient;

/**
 * The warning that an address has no health service, once per address for each owner
 * (a pool, or a grpc-js channel's policy): its anchors count as healthy.
 */
export function warnOncePerAddress(logger: () => Logger | undefined): (anchor: { readonly key: string; readonly address: string }, detail: string) => void {
  const warned = new Set<string>();
  return (anchor, detail) => {
    if (warned.has(anchor.address)) return;
    warned.add(anchor.address);
    logger()?.warn({ key: anchor.key, address: anchor.address, detail }, `${anchor.address} has no grpc.health.v1 service (UNIMPLEMENTED): its anchors count as healthy`);
  };
}

const STATUSES = new Set<string>(['SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN', 'UNKNOWN']);

export class HealthWatch {
  readonly #client: HealthClient;
  readonly #settings: HealthWatchSettings;
  readonly #report: HealthReport;
  readonly #backoffs: ExponentialBackoff<unknown>;
  #backoff: IBackoff<unknown> | undefined;
  #call: grpc.ClientReadableStream<WatchResponse> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #running = false;

  constructor(channel: grpc.ChannelInterface, address: string, settings: HealthWatchSettings, report: HealthReport) {
    // No credentials of its own: channelOverride carries the anchor's.
    this.#client = new HealthClientConstructor(address, grpc.credentials.createInsecure(), { channelOverride: channel });
    this.#settings = settings;
    this.#report = report;
    this.#backoffs = new ExponentialBackoff({ initialDelay: settings.retryInitialMillis, maxDelay: settings.retryMaxMillis });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#backoff = undefined;
    this.#open();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
  }

  #open(): void {
    const call = this.#client.watch({ service: this.#settings.serviceName });
    this.#call = call;
    const current = (): boolean => this.#running && this.#call === call;
    // gRFC A17: a stream that had answered is opened again at once; one that never did, after the backoff.
    let answered = false;
    call.on('data', (response: WatchResponse) => {
      if (!current()) return;
      answered = true;
      this.#backoff = undefined; // the stream works: the next failure starts from the initial delay
      // The server's UNKNOWN (or a status this client does not know) is not SERVING: unhealthy.
      const sent = response.status !== undefined && STATUSES.has(response.status) ? (response.status as HealthStatus) : 'UNKNOWN';
      this.#report.status(sent === 'UNKNOWN' ? 'NOT_SERVING' : sent, sent === 'UNKNOWN' ? `the backend reported ${response.status ?? 'no status'}` : null);
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (!current()) return;
      this.#call = undefined;
      if (error.code === grpc.status.UNIMPLEMENTED) {
        this.#running = false;
        this.#report.unimplemented(error.details);
        return;
      }
      this.#report.status('NOT_SERVING', `health stream failed: ${error.code} ${grpc.status[error.code] ?? ''} ${error.details}`.trim());
      this.#scheduleRetry(answered);
    });
    call.on('end', () => {
      // A Watch that ends without an error (a server shutting the stream) is retried too.
      if (!current()) return;
      this.#call = undefined;
      this.#report.status('NOT_SERVING', 'health stream ended');
      this.#scheduleRetry(answered);
    });
  }

  #scheduleRetry(immediately: boolean): void {
    let delay = 0;
    if (!immediately) {
      this.#backoff = this.#backoff === undefined ? this.#backoffs.next() : this.#backoff.next(undefined);
      delay = this.#backoff.duration;
    }
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#running) this.#open();
    }, delay);
    this.#retry.unref();
  }
}
