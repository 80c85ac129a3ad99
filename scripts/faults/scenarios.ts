// The fault scenarios in the order the issue lists them; the runner and the spec share it.
import type { FaultScenario } from './fault.js';
import { etcdChurnScenario } from './etcd-churn.js';
import { etcdOutageScenario } from './etcd-outage.js';
import { compactionScenario } from './compaction.js';
import { halfOpenScenario } from './half-open.js';
import { backendKillScenario } from './backend-kill.js';
import { fuzzScenario } from './fuzz.js';
import { leaseMisuseScenario } from './lease-misuse.js';
import { soakScenario } from './soak.js';
import { securityScenario } from './security.js';
import { healthFlipScenario } from './health-flip.js';
import { ejectionScenario } from './ejection.js';
import { l4RefreshScenario } from './l4-refresh.js';
import { partitionProxyScenario, partitionScenario } from './partition.js';
import { memberReplacementScenario } from './member-replacement.js';
import { blackHoledHostGoScenario, blackHoledHostScenario, frozenConnectionsGoScenario, frozenConnectionsScenario } from './frozen-backends.js';
import { pingPolicyScenario } from './ping-policy.js';
import { slowButAliveScenario } from './slow-but-alive.js';
import { slowStartScenario } from './slow-start.js';
import { zoneRoutingScenario } from './zone-routing.js';
import { subsetCoordinatedScenario } from './subset-coordinated.js';
import { connectionAgeScenario, gracefulShutdownScenario, rollingRestartHealthScenario, rollingRestartScenario } from './restarts.js';

export const SCENARIOS: readonly FaultScenario[] = [
  etcdChurnScenario,
  etcdOutageScenario,
  compactionScenario,
  halfOpenScenario,
  backendKillScenario,
  fuzzScenario,
  leaseMisuseScenario,
  soakScenario,
  securityScenario,
  healthFlipScenario,
  ejectionScenario,
  connectionAgeScenario,
  gracefulShutdownScenario,
  rollingRestartScenario,
  rollingRestartHealthScenario,
  l4RefreshScenario,
  partitionScenario,
  partitionProxyScenario,
  memberReplacementScenario,
  frozenConnectionsScenario,
  frozenConnectionsGoScenario,
  blackHoledHostScenario,
  blackHoledHostGoScenario,
  pingPolicyScenario,
  slowButAliveScenario,
  slowStartScenario,
  zoneRoutingScenario,
  subsetCoordinatedScenario,
];
