#!/usr/bin/env node
// xmppd: the admin CLI (start, adduser, passwd, deluser, users, check), after prosodyctl.
// Exit codes: 0 done, 1 failed (the message says why), 2 the command line was wrong.

import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostError } from './util/errors.js';
import { openUsers, readConfig, startServer, DEFAULT_CONFIG_PATH, type ConfigSource, type Server } from './core/server.js';

const USAGE = `Usage: xmppd <command> [options]

Commands:
  start                 run the server (what \`npm start\` does)
  adduser JID           create an account; asks for the password on a terminal
  passwd JID            change an account's password
  deluser JID           delete an account
  users [--host HOST]   list accounts
  check                 validate the configuration and exit

Options:
  --config PATH         config file (default ${DEFAULT_CONFIG_PATH}; when absent the embedded default runs:
                        virtual host localhost, data in ./data, HTTP 127.0.0.1:5280, c2s 127.0.0.1:5222)
  --password-stdin      read the password from the first line of standard input (adduser, passwd)
  -h, --help            show this help
`;

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'password-stdin': { type: 'boolean', default: false },
        host: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`xmppd: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command = 'start', ...rest] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const source: ConfigSource = values.config === undefined ? {} : { configPath: values.config };
  try {
    switch (command) {
      case 'start':
        return await start(source);
      case 'check':
        return check(source);
      case 'adduser':
      case 'passwd':
      case 'deluser':
        return await userCommand(command, oneJid(command, rest), source, values['password-stdin'] ?? false);
      case 'users':
        return await listUsers(source, values.host);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`xmppd: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof HostError) {
      process.stderr.write(`xmppd: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`xmppd: unexpected failure: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

function oneJid(command: string, rest: string[]): string {
  if (rest.length !== 1) throw new UsageError(`${command} takes exactly one JID, e.g. xmppd ${command} alice@localhost`);
  return rest[0]!;
}

async function start(source: ConfigSource): Promise<number> {
  // Signals are caught from the first moment: a SIGTERM while the listeners are still opening stops the server
  // once it is up, instead of killing the process half-started.
  let signalled: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    signalled = signal;
    wake?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let server: Server;
  try {
    server = await startServer(source);
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw err;
  }
  if (!signalled) process.stderr.write(await readySummary(server));
  if (!signalled) await new Promise<void>((resolve) => (wake = resolve));
  server.log.info({ signal: signalled }, 'signal received, shutting down');
  try {
    await server.stop();
  } catch (err) {
    server.log.error({ err }, 'error during shutdown');
  }
  return 0;
}

/** A few lines for the person who just ran `npm start` (the JSON log on stdout is for machines). */
async function readySummary(server: Server): Promise<string> {
  const { config } = server;
  const lines = [`xmppd is running (config: ${config.source}; data: ${config.data_dir})`];
  for (const port of server.httpPorts()) lines.push(`  HTTP    http://${config.http_interfaces[0]}:${port}/`);
  for (const port of server.httpsPorts()) lines.push(`  HTTPS   https://${config.http_interfaces[0]}:${port}/`);
  for (const port of server.c2sPorts()) lines.push(`  XMPP    ${config.c2s_interfaces[0]}:${port} (STARTTLS)`);
  for (const port of server.c2sTlsPorts()) lines.push(`  XMPP    ${config.c2s_interfaces[0]}:${port} (direct TLS)`);
  lines.push(`  hosts   ${Object.keys(config.virtual_hosts).join(', ')}`);
  if ((await server.users.list()).length === 0) {
    const host = Object.keys(config.virtual_hosts)[0];
    lines.push(`No accounts yet: add one with  npm run xmppd -- adduser you@${host}`);
  }
  lines.push('Stop with Ctrl-C.', '');
  return lines.join('\n');
}

function check(source: ConfigSource): number {
  const { config, catalog } = readConfig(source);
  const hosts = Object.keys(config.virtual_hosts);
  // Storage backends are chosen by the `storage` key, not modules_enabled.
  const optional = [...catalog.manifests.keys()].filter((id) => !catalog.core.has(id) && !id.startsWith('storage_'));
  process.stdout.write(`${config.source}: OK — virtual hosts ${hosts.join(', ')}; storage ${config.storage}; optional modules available: ${optional.join(', ') || 'none'}\n`);
  return 0;
}

async function userCommand(command: 'adduser' | 'passwd' | 'deluser', jid: string, source: ConfigSource, fromStdin: boolean): Promise<number> {
  const { config } = readConfig(source);
  const { storage, users } = await openUsers(config);
  try {
    if (command === 'deluser') {
      process.stdout.write(`Deleted ${await users.delete(jid)}.\n`);
      return 0;
    }
    users.accountJid(jid); // a bad JID or host fails before the password prompt
    const password = fromStdin ? await readStdinLine() : await promptPassword();
    if (command === 'adduser') process.stdout.write(`Created ${await users.create(jid, password)}.\n`);
    else process.stdout.write(`Changed the password of ${await users.setPassword(jid, password)}.\n`);
    return 0;
  } finally {
    storage.close();
  }
}

async function listUsers(source: ConfigSource, host: string | undefined): Promise<number> {
  const { config } = readConfig(source);
  const { storage, users } = await openUsers(config);
  try {
    const list = await users.list(host?.toLowerCase());
    process.stdout.write(list.length > 0 ? `${list.join('\n')}\n` : 'No accounts yet; add one with: xmppd adduser alice@localhost\n');
    return 0;
  } finally {
    storage.close();
  }
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line === '') throw new HostError('HOST_ERR_PASSWORD_INVALID', 'no password on standard input; write it as the first line.');
  return line;
}

/** Ask twice on the terminal without echo. */
async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new HostError('HOST_ERR_PASSWORD_INVALID', 'standard input is not a terminal; pass --password-stdin and write the password on standard input.');
  }
  const first = await askHidden('Password: ');
  const second = await askHidden('Repeat password: ');
  if (first !== second) throw new HostError('HOST_ERR_PASSWORD_INVALID', 'the two passwords differ; nothing was changed.');
  return first;
}

function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    let prompted = false;
    output._writeToOutput = (s: string) => {
      // Show the prompt once and nothing of what is typed.
      if (!prompted) process.stdout.write(prompt);
      prompted = true;
      if (s.includes('\n')) process.stdout.write('\n');
    };
    rl.question(prompt, (answer) => {
      rl.close();
      resolve(answer);
    });
  });
}

/** Run when executed (node cli.js, or the xmppd bin link), not when a spec imports main(). */
function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return realpathSync(invoked) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
