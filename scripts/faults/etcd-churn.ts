// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const etcdChurnScenario: FaultScenario = {
  id: 'etcd-churn',
  title: 'etcd-churn (not written yet)',
  run() {
    return Promise.reject(new Error('etcd-churn: not written yet'));
  },
};
