// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const fuzzScenario: FaultScenario = {
  id: 'fuzz',
  title: 'fuzz (not written yet)',
  run() {
    return Promise.reject(new Error('fuzz: not written yet'));
  },
};
