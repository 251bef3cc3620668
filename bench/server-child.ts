// Benchmark child: the real server (startServer, exactly what `xmppd start` runs) that tells the bench its bound
// ports over IPC, because at log_level warn the server's own "listening" lines are not printed. Flags switch off
// one mechanism each (StartOptions), so the bench can measure what it is worth.

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { startServer } from '../lib/host/core/server.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'no-credential-cache': { type: 'boolean', default: false },
    'pbkdf2-on-event-loop': { type: 'boolean', default: false },
  },
});
const configPath = positionals[0];
if (!configPath) {
  process.stderr.write('usage: node --import tsx bench/server-child.ts CONFIG [--no-credential-cache] [--pbkdf2-on-event-loop]\n');
  process.exit(2);
}

const server = await startServer({
  configPath,
  credentialCache: !flags['no-credential-cache'],
  pbkdf2OnEventLoop: flags['pbkdf2-on-event-loop'],
});
process.send?.({ msg: 'bench-ready', http: server.httpPorts()[0], c2s: server.c2sPorts()[0], c2sTls: server.c2sTlsPorts()[0] });

let profiler: Session | undefined;

// Between rows (never during one): stats — bound sessions and heap, to check the idle sessions arrived; and
// CPU profiling of exactly one measured row (BENCH_PROFILE), through the inspector rather than --cpu-prof,
// so start-up and session set-up stay out of the profile.
process.on('message', (message: unknown) => {
  if (typeof message !== 'object' || message === null) return;
  const { msg, path } = message as { msg?: unknown; path?: unknown };
  if (msg === 'bench-stats?') {
    const memory = process.memoryUsage();
    process.send?.({
      msg: 'bench-stats',
      sessions: server.sessions.all().length,
      heapUsedKiB: Math.round(memory.heapUsed / 1024),
      externalKiB: Math.round(memory.external / 1024),
    });
  } else if (msg === 'bench-profile-start') {
    void startProfile().then(() => process.send?.({ msg: 'bench-profile-started' }));
  } else if (msg === 'bench-profile-stop' && typeof path === 'string') {
    void stopProfile(path).then(() => process.send?.({ msg: 'bench-profile-stopped' }));
  }
});

async function startProfile(): Promise<void> {
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 250 });
  await profiler.post('Profiler.start');
}

async function stopProfile(path: string): Promise<void> {
  if (!profiler) return;
  const { profile } = await profiler.post('Profiler.stop');
  writeFileSync(path, JSON.stringify(profile));
  profiler.disconnect();
  profiler = undefined;
}

let isStopping = false;
const stop = (): void => {
  if (isStopping) return;
  isStopping = true;
  server.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`stop failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The bench's IPC channel closing means the bench is gone: do not linger.
process.on('disconnect', stop);
