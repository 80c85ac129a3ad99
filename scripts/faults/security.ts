// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const securityScenario: FaultScenario = {
  id: 'security',
  title: 'security (not written yet)',
  run() {
    return Promise.reject(new Error('security: not written yet'));
  },
};
