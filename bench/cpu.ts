// Benchmark helper: CPU time from /proc — a child's (all its threads) and the whole machine's — so each row can
// say which process was busy and whether something else on the machine (another test run) took CPU meanwhile.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** USER_HZ: the unit of /proc/<pid>/stat and /proc/stat times. */
function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

/** CPU time a process used so far, user + system, all threads, in seconds. */
export function processCpuSeconds(pid: number): number {
  const { user, system } = processCpuParts(pid);
  return user + system;
}

/** User and kernel CPU seconds of a process so far. */
export function processCpuParts(pid: number): { user: number; system: number } {
  return cpuPartsOf(`/proc/${pid}/stat`);
}

/**
 * CPU seconds, user + system, of a process's main thread alone (for Node: the event loop, without the worker threads
 * and libuv's pool), so a row can tell the event loop's cost per request from what other threads add.
 */
export function mainThreadCpuSeconds(pid: number): number {
  const { user, system } = cpuPartsOf(`/proc/${pid}/task/${pid}/stat`);
  return user + system;
}

function cpuPartsOf(statPath: string): { user: number; system: number } {
  const stat = readFileSync(statPath, 'utf8');
  // After the command name in parentheses (which may hold spaces): utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / clockTicks(), system: Number(fields[12]) / clockTicks() };
}

export interface MachineCpu {
  /** Busy CPU seconds over all cores (user, nice, system, irq, softirq). */
  busy: number;
  /** Time the hypervisor gave our virtual CPUs to someone else. */
  steal: number;
}

export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return { busy: (user! + nice! + system! + irq! + softirq!) / clockTicks(), steal: steal! / clockTicks() };
}
