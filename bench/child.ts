// Benchmark helper: runs a process under test (the server, the ceiling app) as a child, keeps its warning lines,
// measures its memory and CPU from /proc/<pid>, talks to it over IPC, and makes sure no child outlives the bench.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { mainThreadCpuSeconds, processCpuParts, processCpuSeconds } from './cpu.js';

/** The IPC message a child sends when it is ready to serve (see server-child.ts, ceiling.ts). */
export interface ReadyMessage {
  msg: 'bench-ready';
  http: number;
  c2s?: number;
  c2sTls?: number;
}

/** What server-child.ts answers to a stats query. */
export interface ChildStats {
  msg: 'bench-stats';
  sessions: number;
  heapUsedKiB: number;
  externalKiB: number;
}

export interface ChildOptions {
  /** Shown in messages: `xmppd`, `ceiling`. */
  name: string;
  /** The entry file: a .ts file runs under tsx, a compiled .js one under plain node. */
  script: string;
  args?: string[];
  /** Extra node flags (after `--import tsx` when the script is TypeScript) (BENCH_NODE_FLAGS). */
  nodeFlags?: string[];
  env?: Record<string, string>;
  cwd: string;
  /**
   * Where the child's stdout goes: `pipe` (default) reads it here and keeps warn-and-above lines; a file path
   * sends it straight to that file (a run at log_level info, where parsing a line per request would load the bench).
   */
  stdoutFile?: string;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let isCleanupInstalled = false;

/** Kill every child still running when the bench exits, however it exits. */
function installCleanup(): void {
  if (isCleanupInstalled) return;
  isCleanupInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`);
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

export class Child {
  /** Lines the child wrote at warn level or above (pino level ≥ 40) and stderr lines: shown when something fails. */
  readonly problems: string[] = [];
  private problemCount = 0;
  private exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
    readonly ready: ReadyMessage,
    exited: Promise<number | null>,
  ) {
    this.exited = exited;
  }

  static async start(opts: ChildOptions): Promise<Child> {
    installCleanup();
    const loader = opts.script.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const args = [...loader, ...(opts.nodeFlags ?? []), opts.script, ...(opts.args ?? [])];
    const stdoutFd = opts.stdoutFile === undefined ? undefined : openSync(opts.stdoutFile, 'a');
    const proc = spawn(process.execPath, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      // The IPC channel carries the ready message and stats queries; nothing during a measured row.
      stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe', 'ipc'],
    });
    if (stdoutFd !== undefined) closeSync(stdoutFd);
    live.add(proc);
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    }));
    const early: string[] = [];
    const created: { child?: Child } = {};
    const note = (line: string): void => {
      if (created.child) created.child.note(line);
      else early.push(line);
    };
    createInterface({ input: proc.stderr! }).on('line', (line) => note(`stderr: ${line}`));
    if (proc.stdout) {
      createInterface({ input: proc.stdout }).on('line', (line) => {
        // Only warn and above are kept; at log_level warn there is no line per request to parse.
        const level = /^\{"level":(\d+)/.exec(line);
        if (!level || Number(level[1]) >= 40) note(line);
      });
    }

    const timeoutMs = opts.readyTimeoutMs ?? 30_000;
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${opts.name}: not ready within ${timeoutMs} ms\n${early.join('\n')}`)), timeoutMs);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${opts.name} exited with code ${code} before it was ready:\n${early.join('\n')}`));
      });
      const onMessage = (message: unknown): void => {
        if (typeof message !== 'object' || message === null || (message as { msg?: unknown }).msg !== 'bench-ready') return;
        clearTimeout(timer);
        proc.off('message', onMessage);
        resolve(message as ReadyMessage);
      };
      proc.on('message', onMessage);
    });
    const child = new Child(opts.name, proc, ready, exited);
    created.child = child;
    for (const line of early) child.note(line);
    return child;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get problemLines(): number {
    return this.problemCount;
  }

  private note(line: string): void {
    this.problemCount++;
    if (this.problems.length < 50) this.problems.push(line);
  }

  /** Peak resident set size since start or the last resetPeak(), in KiB (VmHWM). */
  peakRssKiB(): number {
    return statusField(this.pid, 'VmHWM');
  }

  rssKiB(): number {
    return statusField(this.pid, 'VmRSS');
  }

  /** CPU time the child used so far, user + system, all threads, in seconds. */
  cpuSeconds(): number {
    return processCpuSeconds(this.pid);
  }

  cpuParts(): { user: number; system: number } {
    return processCpuParts(this.pid);
  }

  /** CPU seconds of the event loop's thread alone. */
  mainThreadCpuSeconds(): number {
    return mainThreadCpuSeconds(this.pid);
  }

  /** Reset VmHWM to the current RSS (Linux ≥ 4.0: `echo 5 > /proc/<pid>/clear_refs`), so each row has its own peak. */
  resetPeak(): boolean {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }

  /** Ask the child for its own numbers over IPC (bound c2s sessions, heap); undefined if it does not answer. */
  query(timeoutMs = 5_000): Promise<ChildStats | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.proc.off('message', onMessage);
        resolve(undefined);
      }, timeoutMs);
      const onMessage = (message: unknown): void => {
        if (typeof message !== 'object' || message === null || (message as { msg?: unknown }).msg !== 'bench-stats') return;
        clearTimeout(timer);
        this.proc.off('message', onMessage);
        resolve(message as ChildStats);
      };
      this.proc.on('message', onMessage);
      this.proc.send({ msg: 'bench-stats?' });
    });
  }

  /** Send a message over IPC and wait for the answer named `reply` (server-child.ts), at most timeoutMs. */
  request(message: Record<string, unknown>, reply: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proc.off('message', onMessage);
        reject(new Error(`${this.name}: no ${reply} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (answer: unknown): void => {
        if (typeof answer !== 'object' || answer === null || (answer as { msg?: unknown }).msg !== reply) return;
        clearTimeout(timer);
        this.proc.off('message', onMessage);
        resolve();
      };
      this.proc.on('message', onMessage);
      this.proc.send(message);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]);
}

/** Kill every running child now (global timeout). */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}
