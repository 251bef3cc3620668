#!/usr/bin/env node
// xmppd: the admin CLI (start, adduser, passwd, deluser, users, check), after prosodyctl.
// Exit codes: 0 done, 1 failed (the message says why), 2 the command line was wrong.

import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostError } from './util/errors.js';
import { openTokens, openUsers, readConfig, startServer, DEFAULT_CONFIG_PATH, type ConfigSource, type Server } from './core/server.js';
import { parseDuration } from './core/options.js';
import type { TokenInfo } from './api.js';

const USAGE = `Usage: xmppd <command> [options]

Commands:
  start                 run the server (what \`npm start\` does)
  adduser JID           create an account; asks for the password on a terminal
  passwd JID            change an account's password
  deluser JID           delete an account
  users [--host HOST]   list accounts
  check                 validate the configuration and exit
  token add JID [--name NAME] [--to JID-or-domain ...] [--expires DURATION]
                        mint an app token for the account (DURATION: 30s, 15m, 12h, 90d); prints it once, alone
                        on the last line
  token list [JID]      list tokens (id, account, name, scope, expiry; never the secret)
  token revoke ID-or-NAME
                        revoke a token at once

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
        name: { type: 'string' },
        to: { type: 'string', multiple: true },
        expires: { type: 'string' },
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
      case 'token':
        return await tokenCommand(rest, source, { name: values.name, to: values.to, expires: values.expires });
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

/** `xmppd token add|list|revoke`: on the storage directly, as adduser does (a running server sees the change at once). */
async function tokenCommand(rest: string[], source: ConfigSource, opts: { name?: string; to?: string[]; expires?: string }): Promise<number> {
  const [sub, ...args] = rest;
  if (sub !== 'add' && sub !== 'list' && sub !== 'revoke') throw new UsageError('token takes add, list or revoke, e.g. xmppd token add alice@localhost --name cron');
  if (sub === 'add' && args.length !== 1) throw new UsageError('token add takes exactly one JID, e.g. xmppd token add alice@localhost --name cron');
  if (sub === 'list' && args.length > 1) throw new UsageError('token list takes at most one JID');
  if (sub === 'revoke' && args.length !== 1) throw new UsageError('token revoke takes exactly one token id or name');
  if (sub !== 'add' && (opts.name !== undefined || opts.to !== undefined || opts.expires !== undefined)) throw new UsageError('--name, --to and --expires go with token add');
  let expiresInSeconds: number | undefined;
  if (opts.expires !== undefined) {
    expiresInSeconds = parseDuration(opts.expires);
    if (expiresInSeconds === undefined || !Number.isInteger(expiresInSeconds) || expiresInSeconds < 1) {
      throw new UsageError(`--expires ${JSON.stringify(opts.expires)} is not a duration of whole seconds (30s, 15m, 12h, 90d)`);
    }
  }
  const { config } = readConfig(source);
  const { storage, users } = await openUsers(config);
  const tokens = openTokens(config, storage);
  try {
    if (sub === 'add') {
      const jid = users.accountJid(args[0]!);
      const { token, info } = await tokens.create(jid, { name: opts.name ?? 'token', ...(opts.to ? { to: opts.to } : {}), ...(expiresInSeconds !== undefined ? { expiresInSeconds } : {}) });
      process.stdout.write(`Created token ${info.id} "${info.name}" for ${info.account}${info.to ? ` (to ${info.to.join(', ')})` : ''}${info.expires ? `, expires ${info.expires}` : ''}.\nIt is shown only now; give it to the script that sends:\n${token}\n`);
      return 0;
    }
    const accounts = sub === 'list' && args[0] !== undefined ? [users.accountJid(args[0])] : await users.list();
    const all: TokenInfo[] = [];
    for (const account of accounts) all.push(...(await tokens.list(account)));
    if (sub === 'list') {
      process.stdout.write(all.length === 0 ? 'No tokens.\n' : `${all.map(tokenLine).join('\n')}\n`);
      return 0;
    }
    const wanted = args[0]!;
    const byId = all.filter((t) => t.id === wanted);
    const matches = byId.length > 0 ? byId : all.filter((t) => t.name === wanted);
    if (matches.length === 0) throw new HostError('HOST_ERR_TOKEN_INVALID', `no token has the id or name ${JSON.stringify(wanted)}; see xmppd token list.`);
    if (matches.length > 1) throw new HostError('HOST_ERR_TOKEN_INVALID', `${matches.length} tokens are named ${JSON.stringify(wanted)} (${matches.map((t) => `${t.id} of ${t.account}`).join(', ')}); revoke one by its id.`);
    const [token] = matches as [TokenInfo];
    await tokens.revoke(token.account, token.id);
    process.stdout.write(`Revoked token ${token.id} "${token.name}" of ${token.account}.\n`);
    return 0;
  } finally {
    storage.close();
  }
}

function tokenLine(t: TokenInfo): string {
  const expired = t.expires !== undefined && Date.parse(t.expires) <= Date.now();
  return [t.id, t.account, JSON.stringify(t.name), `to=${t.to?.join(',') ?? '*'}`, `expires=${t.expires ?? 'never'}${expired ? ' (expired)' : ''}`].join('  ');
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
