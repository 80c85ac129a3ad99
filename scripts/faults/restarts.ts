// Issue 12: backends that age out their connections, shut down gracefully, or restart one
// by one, under load on all three ways of calling, with 0 failed calls as the bar
// (three-path-rig.ts: 3 keys with 2 anchors each, one pool, one etcd:/// channel).
import { Backend } from '../../testkit/echo/backend.js';
import { check, sleep, type FaultContext, type FaultScenario } from './fault.js';
import { ANCHORS, BACKENDS, connectionsSettle, keyOf, runThreePaths, SERVER_DELAY_MILLIS, type Acted, type Setup } from './three-path-rig.js';

export const connectionAgeScenario: FaultScenario = {
  id: 'connection-age',
  title: 'backends cycle their connections (max_connection_age) under load: 0 failed calls, N connections after',
  async run(context) {
    const ageMillis = context.short ? 1000 : 2000;
    const graceMillis = 1000;
    const runMillis = context.short ? 4000 : 12_000;
    const result = await runThreePaths(context, { backend: { maxConnectionAge: { millis: ageMillis, graceMillis } } }, async (setup) => {
      await sleep(runMillis);
      await setup.load.stop();
      // The pool's 2 anchors and the channel's 2 subchannels per backend.
      const expected = 2 * ANCHORS;
      const counts = await connectionsSettle(setup.backends, expected, ageMillis + graceMillis + 3000);
      const cycles = Math.floor(runMillis / ageMillis);
      return {
        figure: `${cycles} connection lifetimes of ${ageMillis} ms in ${runMillis / 1000} s; connections per backend after: ${counts.join('/')}`,
        checks: [check(`each backend holds its ${expected} connections again (2 pool anchors + 2 subchannels), counted by the server`, counts.every((n) => n === expected), counts.join('/'))],
        settings: { maxConnectionAgeMillis: ageMillis, graceMillis, runMillis },
      };
    });
    return { id: this.id, title: this.title, ...result };
  },
};

export const gracefulShutdownScenario: FaultScenario = {
  id: 'graceful-shutdown',
  title: 'one of three backends calls tryShutdown() under load, its key stays: 0 failed calls',
  async run(context) {
    const afterMillis = context.short ? 1500 : 4000;
    const result = await runThreePaths(context, {}, async (setup) => {
      const victim = setup.backends[1]!;
      await Promise.all(setup.backends.map((b) => b.resetStats()));
      const down = await victim.shutdown();
      context.log(`b2 shut down in ${Math.round(down.millis)} ms after serving ${down.calls} calls`);
      await sleep(afterMillis);
      const others = await Promise.all([setup.backends[0]!, setup.backends[2]!].map(async (b) => (await b.stats()).calls));
      return {
        figure: `b2 drained in ${Math.round(down.millis)} ms (it ran ${down.calls} calls from the shutdown on); b1/b3 served ${others.join('/')} calls after`,
        checks: [check('the other backends carried the load after the shutdown', others.every((n) => n > 0), others.join('/'))],
        settings: { afterMillis },
      };
    });
    return { id: this.id, title: this.title, ...result };
  },
};

async function rollingRestart(context: FaultContext, health: boolean, setup: Setup): Promise<Acted> {
  const waitMillis = context.short ? 500 : 1000;
  const steps: string[] = [];
  for (let i = 0; i < BACKENDS; i++) {
    const old = setup.backends[i]!;
    const key = keyOf(i);
    const replacement = new Backend({ name: `b${i + 1}`, delayMillis: SERVER_DELAY_MILLIS });
    setup.rig.defer(() => replacement.kill());
    // Take it out of rotation (a real deploy with health checks fails its check; without,
    // its key goes), wait for the clients to move, stop it, start a new one and register it.
    if (health) await old.setHealth('NOT_SERVING');
    else await setup.del(key);
    await sleep(waitMillis);
    await old.shutdown();
    await replacement.start();
    await setup.put(key, replacement);
    setup.backends[i] = replacement;
    await sleep(waitMillis);
    steps.push(`${key} ${old.port}→${replacement.port}`);
  }
  const calls = await Promise.all(setup.backends.map(async (b) => (await b.stats()).calls));
  return {
    figure: `${steps.join(', ')}; new processes served ${calls.join('/')} calls`,
    checks: [check('every new process serves calls', calls.every((n) => n > 0), calls.join('/'))],
    settings: { waitMillis },
  };
}

export const rollingRestartScenario: FaultScenario = {
  id: 'rolling-restart',
  title: 'every backend in turn: key deleted, drained, shut down, a new process on a new port registered: 0 failed calls',
  async run(context) {
    const result = await runThreePaths(context, {}, (setup) => rollingRestart(context, false, setup));
    return { id: this.id, title: this.title, ...result };
  },
};

export const rollingRestartHealthScenario: FaultScenario = {
  id: 'rolling-restart-health',
  title: 'every backend in turn with health checks on: NOT_SERVING, wait, shut down, a new process on a new port: 0 failed calls',
  async run(context) {
    const result = await runThreePaths(context, { health: true }, (setup) => rollingRestart(context, true, setup));
    return { id: this.id, title: this.title, ...result };
  },
};
