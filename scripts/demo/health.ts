// The standard gRPC health check, grpc.health.v1.Health/Check, called the way any
// client would: a grpc-js client built from the service definition grpc-health-check
// exports. Each check uses its own connection and closes it (own subchannel pool), so
// it never lingers in the connections a backend counts.
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

// grpc-health-check types its definition with proto-loader's types; grpc-js's are the same shape.
const HealthClient = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health');

type CheckMethod = (
  request: { service: string },
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, reply?: { status: string }) => void,
) => grpc.ClientUnaryCall;

/** The serving status `address` reports for `service` ('' is the whole server), e.g. "SERVING". */
export async function checkHealth(address: string, service = '', deadlineMillis = 3000): Promise<string> {
  const client = new HealthClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  try {
    const check = (client as unknown as { check: CheckMethod }).check.bind(client);
    return await new Promise<string>((resolve, reject) => {
      check({ service }, { deadline: Date.now() + deadlineMillis }, (err, reply) => {
        if (err) reject(err);
        else resolve(reply?.status ?? 'UNKNOWN');
      });
    });
  } finally {
    client.close();
  }
}
