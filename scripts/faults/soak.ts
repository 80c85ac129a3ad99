// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const soakScenario: FaultScenario = {
  id: 'soak',
  title: 'soak (not written yet)',
  run() {
    return Promise.reject(new Error('soak: not written yet'));
  },
};
