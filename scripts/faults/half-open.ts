// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const halfOpenScenario: FaultScenario = {
  id: 'half-open',
  title: 'half-open (not written yet)',
  run() {
    return Promise.reject(new Error('half-open: not written yet'));
  },
};
