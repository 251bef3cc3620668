// Benchmark helper: compile the server and the bench's child entries with tsc (as `npm run build` does for
// `npm start`), so the children are measured as deployed: under tsx, Node 20 runs the loader hooks on an extra
// thread that adds ~28 MB to the server's RSS and would count against the memory target. BENCH_TSX=1 skips this.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Child entry points (relative to the repo root, without extension). */
export const CHILD_ENTRIES = ['bench/server-child', 'bench/ceiling', 'bench/tls-floor'] as const;
export type ChildEntry = (typeof CHILD_ENTRIES)[number];

export interface Runtime {
  kind: 'compiled' | 'tsx';
  /** Absolute path of an entry's file to run. */
  file(entry: ChildEntry): string;
}

export function tsxRuntime(root: string): Runtime {
  return { kind: 'tsx', file: (entry) => join(root, `${entry}.ts`) };
}

/**
 * Compile into node_modules/.cache/xmppd-bench (ignored by git; packages resolve from the repo's node_modules).
 * Type errors do not stop the build (tsc still emits); they are reported, since `npm test` is where they belong.
 */
export function compiledRuntime(root: string, log: (text: string) => void): Runtime {
  const base = join(root, 'node_modules', '.cache', 'xmppd-bench');
  const out = join(base, 'build');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const tsconfig = join(base, 'tsconfig.json');
  writeFileSync(tsconfig, `${JSON.stringify({
    extends: join(root, 'tsconfig.json'),
    compilerOptions: { rootDir: root, outDir: out, sourceMap: false, noEmitOnError: false },
    include: [join(root, 'lib/**/*.ts'), join(root, 'lib/**/*.cjs'), join(root, 'types/**/*.d.ts'), ...CHILD_ENTRIES.map((e) => join(root, `${e}.ts`))],
  }, null, 2)}\n`);
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { encoding: 'utf8' });
  if (tsc.status !== 0) log(`bench: tsc reported problems (emitted anyway):\n${tsc.stdout}${tsc.stderr}`);
  for (const entry of CHILD_ENTRIES) {
    if (!existsSync(join(out, `${entry}.js`))) throw new Error(`bench: tsc did not emit ${entry}.js:\n${tsc.stdout}${tsc.stderr}`);
  }
  // Below node_modules there is no package scope: say the output is ESM. The host finds plugin.json next to lib/.
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  copyFileSync(join(root, 'plugin.json'), join(out, 'plugin.json'));
  return { kind: 'compiled', file: (entry) => join(out, `${entry}.js`) };
}
