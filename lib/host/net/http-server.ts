// Closing an HTTP(S) server the way Prosody's net/http/server.lua does at shutdown: stop accepting, end idle
// keep-alive connections at once, give busy ones a moment, then cut them.

import type { Server as HttpServer } from 'node:http';

export function closeHttpServer(server: HttpServer, graceMs = 2000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
