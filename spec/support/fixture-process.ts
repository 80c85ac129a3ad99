// Runs a compiled fixture (build/spec/fixtures/<name>.js) in its own Node process and
// reports how it ended: used to prove that a process exits by itself after close().
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface FixtureExit {
  /** Exit code; null if it had to be killed after `timeoutMs`. */
  code: number | null;
  output: string;
}

export async function runFixture(name: string, env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<FixtureExit> {
  const script = fileURLToPath(new URL(`../fixtures/${name}.js`, import.meta.url));
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  return { code, output: output.trim() };
}
