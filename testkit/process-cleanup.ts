// Last-resort cleanup for resources a test file owns outside its own process (etcd
// members): run synchronous cleanups when the process exits, however it exits, short of
// SIGKILL.
//
// - 'exit' (normal end, process.exit(), uncaught exception): run the cleanups.
// - SIGINT / SIGTERM / SIGHUP: run the cleanups, then exit with code 1.
// - SIGALRM (tap's per-file timeout): run the cleanups but do not exit, so tap can still
//   report the timeout; it kills the process itself right after.
//
// Listeners are installed lazily, on the first registration, so tap's own signal
// handling (installed when tap is imported) runs before ours.

type Cleanup = () => void;

const cleanups = new Set<Cleanup>();
let installed = false;

function runAll(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // keep going: the other resources still need cleaning
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      runAll();
      process.exit(1);
    });
  }
  process.on('SIGALRM', runAll);
}

/**
 * Register a synchronous cleanup to run if the process goes away before it is
 * unregistered. Returns the function that unregisters it (call it once the resource was
 * released normally).
 */
export function registerExitCleanup(fn: Cleanup): () => void {
  install();
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}
