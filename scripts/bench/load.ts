// What the RPC scenarios share: an offered load (loops of back-to-back calls for a while,
// with latency quantiles), and a client on the npm grpc-gcp channel pool, the Google peer.
import * as grpc from '@grpc/grpc-js';
import grpcGcp from 'grpc-gcp';
import { EchoClient } from '../../testkit/echo/echo-service.js';
import { quantile } from './scenario.js';

export interface Load {
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

/** `loops` callers, each calling back-to-back until `millis` have passed; calls still running then are waited for and counted. */
export async function offerLoad(call: () => Promise<unknown>, loops: number, millis: number): Promise<Load> {
  const latencies: number[] = [];
  let failed = 0;
  const start = performance.now();
  const end = start + millis;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t0);
        } catch {
          failed += 1;
        }
      }
    }),
  );
  const elapsed = performance.now() - start;
  return { callsPerSec: (latencies.length / elapsed) * 1000, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), failed };
}

/**
 * An Echo client on grpc-gcp's channel pool: up to `maxSize` channels; another opens when
 * the least busy one has `lowWatermark` calls running, and each call goes to the least busy.
 */
export function gcpEchoClient(address: string, maxSize: number, lowWatermark: number, channelOptions: grpc.ChannelOptions = {}): EchoClient {
  const gcp = grpcGcp(grpc);
  return new EchoClient(address, grpc.credentials.createInsecure(), {
    ...channelOptions,
    // grpc-js types the factory as returning a Channel; grpc-gcp's factory implements the channel interface.
    channelFactoryOverride: gcp.gcpChannelFactoryOverride as unknown as grpc.ClientOptions['channelFactoryOverride'],
    callInvocationTransformer: gcp.gcpCallInvocationTransformer,
    gcpApiConfig: gcp.createGcpApiConfig({ channelPool: { maxSize, maxConcurrentStreamsLowWatermark: lowWatermark } }),
  } as grpc.ClientOptions);
}
