// PLACEHOLDER: replaced by the real scenario.
import type { FaultScenario } from './fault.js';

export const compactionScenario: FaultScenario = {
  id: 'compaction',
  title: 'compaction (not written yet)',
  run() {
    return Promise.reject(new Error('compaction: not written yet'));
  },
};
