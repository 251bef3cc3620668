// Benchmark child: the memory floor for idle c2s sessions — a bare node:tls server (same pair, same minimum
// version as the c2s listener) that holds every connection and answers each read with a few bytes; no XMPP.
// Run with BENCH_TLS_CERT / BENCH_TLS_KEY set; tells the bench its port over IPC.

import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const held = new Set<tls.TLSSocket>();
const server = tls.createServer(
  { cert: readFileSync(process.env.BENCH_TLS_CERT ?? ''), key: readFileSync(process.env.BENCH_TLS_KEY ?? ''), minVersion: 'TLSv1.2' },
  (socket) => {
    held.add(socket);
    socket.setNoDelay(true);
    socket.on('data', () => socket.write('<ok/>'));
    socket.on('error', () => undefined);
    socket.on('close', () => held.delete(socket));
  },
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ msg: 'bench-ready', http: 0, c2sTls: typeof address === 'object' && address ? address.port : 0 });
});

const stop = (): void => {
  for (const socket of held) socket.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
