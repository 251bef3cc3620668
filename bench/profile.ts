// Benchmark helper: summarise a V8 .cpuprofile (BENCH_PROFILE writes one per profiled row; `node --cpu-prof` too):
// self time per function and per package/folder, so a missed target can be explained by where the time goes.
// Also runnable alone: `node --import tsx bench/profile.ts DIR_OR_FILE`.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { markdownTable, type Column } from './table.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Entry {
  name: string;
  selfUs: number;
}

/** A file compiled by build.ts (under node_modules/.cache/xmppd-bench/build/) is named by its source path. */
function built(path: string): string {
  const marker = '/xmppd-bench/build/';
  const at = path.indexOf(marker);
  return at >= 0 ? `/${path.slice(at + marker.length)}` : path;
}

/** Folder-level owner of a script URL: `node_modules/koa`, `lib/host/c2s`, `node:internal/...`, or `(native)`. */
function owner(url: string): string {
  if (url === '') return '(native / GC / idle)';
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const path = built(url.startsWith('file://') ? fileURLToPath(url) : url);
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return `node_modules/${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const lib = path.indexOf('/lib/');
  if (lib >= 0) return path.slice(lib + 1).split('/').slice(0, -1).join('/');
  return path;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const path = built(url.startsWith('file://') ? fileURLToPath(url) : url);
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + 1);
  const lib = path.indexOf('/lib/');
  return lib >= 0 ? path.slice(lib + 1) : path;
}

export function profileTables(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfById = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    selfById.set(id, (selfById.get(id) ?? 0) + dt);
  });
  const functions = new Map<string, Entry>();
  const owners = new Map<string, Entry>();
  for (const [id, us] of selfById) {
    const frame = byId.get(id)!.callFrame;
    const fn = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`.trim();
    const f = functions.get(fn) ?? { name: fn, selfUs: 0 };
    f.selfUs += us;
    functions.set(fn, f);
    const o = owner(frame.url);
    const e = owners.get(o) ?? { name: o, selfUs: 0 };
    e.selfUs += us;
    owners.set(o, e);
  }
  const columns = (title: string): Column<Entry>[] => [
    { title, align: 'left', value: (e) => `\`${e.name}\`` },
    { title: 'self ms', value: (e) => (e.selfUs / 1000).toFixed(0) },
    { title: 'self %', value: (e) => `${((e.selfUs / total) * 100).toFixed(1)}%` },
  ];
  const sorted = (m: Map<string, Entry>): Entry[] => [...m.values()].sort((a, b) => b.selfUs - a.selfUs);
  return [
    `Profile: ${(total / 1e6).toFixed(1)} s sampled.`,
    '',
    markdownTable(columns('where (package or folder)'), sorted(owners).slice(0, 15)),
    '',
    markdownTable(columns('function'), sorted(functions).slice(0, top)),
  ].join('\n');
}

/** The newest .cpuprofile in a folder (or the file itself), summarised. */
export function summariseProfile(dirOrFile: string): string {
  let file = dirOrFile;
  if (statSync(dirOrFile).isDirectory()) {
    const found = readdirSync(dirOrFile)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(dirOrFile, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (found.length === 0) return `no .cpuprofile in ${dirOrFile}`;
    file = found[0]!;
  }
  return `${file}\n${profileTables(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${summariseProfile(process.argv[2] ?? '.')}\n`);
}
