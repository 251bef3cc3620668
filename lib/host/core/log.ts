// Logging: pino, one JSON line per event. Secrets never reach a line: callers do not pass them, and
// the redaction below is the second guard should a request or header object ever be logged whole.

import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

const REDACT = ['password', '*.password', 'authorization', '*.authorization', '*.headers.authorization'];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, base: { name: 'xmppd' }, redact: { paths: REDACT, censor: '[redacted]' } };
  // Standard output, written asynchronously: while one write is under way the next lines gather, so under
  // load one write carries many lines instead of one write per request line at log_level info. pino
  // writes what is left when the process exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
