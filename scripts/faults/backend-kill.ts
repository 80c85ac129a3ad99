// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const backendKillScenario: FaultScenario = {
  id: 'backend-kill',
  title: 'backend-kill (not written yet)',
  run() {
    return Promise.reject(new Error('backend-kill: not written yet'));
  },
};
