// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const etcdOutageScenario: FaultScenario = {
  id: 'etcd-outage',
  title: 'etcd-outage (not written yet)',
  run() {
    return Promise.reject(new Error('etcd-outage: not written yet'));
  },
};
