// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const leaseMisuseScenario: FaultScenario = {
  id: 'lease-misuse',
  title: 'lease-misuse (not written yet)',
  run() {
    return Promise.reject(new Error('lease-misuse: not written yet'));
  },
};
