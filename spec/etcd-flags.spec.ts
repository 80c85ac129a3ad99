// The etcd connection flags the commands share, as options: --auto-sync-interval here
// (the others are exercised through the commands in cli.spec.ts).
import t from 'tap';
import { etcdOptionsFromFlags } from '../lib/cli/etcd-flags.js';
import { UsageError } from '../lib/cli/usage-error.js';

t.test('--auto-sync-interval MS sets etcd.autoSyncIntervalMillis; 0 turns it off; anything else is a usage error', async (t) => {
  t.equal(etcdOptionsFromFlags({ 'auto-sync-interval': '500' }, {}).autoSyncIntervalMillis, 500);
  t.equal(etcdOptionsFromFlags({ 'auto-sync-interval': '0' }, {}).autoSyncIntervalMillis, 0);
  t.equal(etcdOptionsFromFlags({}, {}).autoSyncIntervalMillis, undefined, 'absent: the default (60 s) applies');
  for (const bad of ['-1', '1.5', 'soon']) {
    t.throws(() => etcdOptionsFromFlags({ 'auto-sync-interval': bad }, {}), /--auto-sync-interval must be a whole number of milliseconds/, `refused: ${bad}`);
    t.ok(caught(() => etcdOptionsFromFlags({ 'auto-sync-interval': bad }, {})) instanceof UsageError, 'as a UsageError');
  }
});

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
