// Logging: pino, one JSON line per event. Secrets never reach a line: callers do not pass them, and
// the redaction below is the second guard should a request or header object ever be logged whole.

import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

const REDACT = ['password', '*.password', 'authorization', '*.authorization', '*.headers.authorization'];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, base: { name: 'xmppd' }, redact: { paths: REDACT, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
