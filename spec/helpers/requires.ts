// Specs that need a Debian package (slixmpp, go-sendxmpp, chromium, prosody, wrk…): skipped with the install hint on a
// developer's machine, failed under CI (CI=true in .ci/run, which installs them), so a broken install cannot pass unseen.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's interpreter, not a pyenv python3 that may come first on PATH: the packages live in its dist-packages. */
export const PYTHON = '/usr/bin/python3';

/** One Debian package a spec needs, and whether this machine has it. */
export interface Need {
  readonly pkg: string;
  readonly isPresent: boolean;
}

const probed = new Map<string, boolean>();

function probe(key: string, run: () => boolean): boolean {
  if (!probed.has(key)) probed.set(key, run());
  return probed.get(key)!;
}

/** A Python module of a Debian package, importable by /usr/bin/python3. */
export function pythonModule(pkg: string, module: string): Need {
  const isPresent = probe(`python:${module}`, () => existsSync(PYTHON) && spawnSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 15_000 }).status === 0);
  return { pkg, isPresent };
}

/** A program of a Debian package: an absolute path, or a command looked up on PATH. */
export function program(pkg: string, command: string): Need {
  const isPresent = probe(`program:${command}`, () =>
    command.startsWith('/') ? existsSync(command) : spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0,
  );
  return { pkg, isPresent };
}

export const slixmpp = (): Need => pythonModule('python3-slixmpp', 'slixmpp');

/**
 * The `skip` option for the tests that need these packages: false when all are here; otherwise the reason with the
 * install line. Under CI it also registers a failing test naming what is missing, where it is called (top level or
 * inside a describe), so the run goes red instead of quietly skipping.
 */
export function requires(needs: readonly Need[]): string | false {
  const missing = [...new Set(needs.filter((n) => !n.isPresent).map((n) => n.pkg))];
  if (missing.length === 0) return false;
  const line = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (process.env.CI) {
    test(`has ${missing.join(', ')} installed`, () => assert.fail(`missing ${missing.join(', ')}; CI must install it (.ci/run): ${line}`));
    return `missing ${missing.join(', ')} in CI (failed above)`;
  }
  return `missing ${missing.join(', ')}; install with: ${line}`;
}

/**
 * Run a Python client script under Debian's python3 (PYTHON) until it exits, killed after `ms`: its exit code, its
 * output and the JSON lines it printed (those starting with `{`, as the specs' scripts report events).
 */
export function runPythonScript<L>(script: string, args: readonly string[], ms: number): Promise<{ code: number | null; lines: L[]; stdout: string; stderr: string }> {
  const child = spawn(PYTHON, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as L);
      resolve({ code, lines, stdout, stderr });
    }),
  );
}
