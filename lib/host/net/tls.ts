// TLS key and certificate for HTTPS and c2s: the configured pair, or a self-signed one made on first start
// (like Prosody's `prosodyctl cert generate`, but automatic so a fresh install can do STARTTLS at once).

import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { HostError } from '../util/errors.js';

const execFileAsync = promisify(execFile);

export interface TlsPair {
  key: string;
  cert: string;
  selfSigned: boolean;
}

export interface LoadTlsOptions {
  tls?: { cert: string; key: string };
  dataDir: string;
  log: Logger;
}

const SELF_SIGNED_NAME = 'localhost';

export async function loadOrCreateTls(opts: LoadTlsOptions): Promise<TlsPair> {
  if (opts.tls) return loadConfigured(opts.tls);
  return loadOrCreateSelfSigned(opts.dataDir, opts.log);
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new HostError('HOST_ERR_TLS', `cannot read the TLS ${what} ${file} (${reason}); check tls.${what === 'certificate' ? 'cert' : 'key'} in the config.`, { cause: err });
  }
}

async function loadConfigured(tls: { cert: string; key: string }): Promise<TlsPair> {
  const [cert, key] = [await readPem(tls.cert, 'certificate'), await readPem(tls.key, 'key')];
  checkPair(cert, key, tls.cert);
  return { cert, key, selfSigned: false };
}

/** Fail at start-up, naming the file, rather than at the first TLS handshake. */
function checkPair(cert: string, key: string, certFile: string): void {
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
  } catch (err) {
    throw new HostError('HOST_ERR_TLS', `TLS certificate ${certFile} is unusable: ${(err as Error).message}.`, { cause: err });
  }
}

async function loadOrCreateSelfSigned(dataDir: string, log: Logger): Promise<TlsPair> {
  const dir = join(dataDir, 'tls');
  const keyFile = join(dir, `${SELF_SIGNED_NAME}.key`);
  const certFile = join(dir, `${SELF_SIGNED_NAME}.crt`);
  const existing = await readExisting(keyFile, certFile);
  if (existing) {
    log.warn({ cert: certFile }, 'using a self-signed TLS certificate; clients will not trust it unless told to (set tls: { cert, key } in the config)');
    return { ...existing, selfSigned: true };
  }
  await generate(dir, keyFile, certFile);
  const made = await readExisting(keyFile, certFile);
  if (!made) throw new HostError('HOST_ERR_TLS', `generated a self-signed certificate in ${dir} but cannot read it back.`);
  log.warn({ cert: certFile }, 'generated a self-signed TLS certificate for localhost; clients will not trust it unless told to (set tls: { cert, key } in the config)');
  return { ...made, selfSigned: true };
}

async function readExisting(keyFile: string, certFile: string): Promise<{ key: string; cert: string } | undefined> {
  try {
    const [key, cert] = [await readFile(keyFile, 'utf8'), await readFile(certFile, 'utf8')];
    checkPair(cert, key, certFile);
    return { key, cert };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err instanceof HostError ? err : new HostError('HOST_ERR_TLS', `cannot read ${certFile}: ${(err as Error).message}.`, { cause: err });
  }
}

/** P-256 key and a 10-year certificate for localhost and 127.0.0.1, written atomically (rename). */
async function generate(dir: string, keyFile: string, certFile: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new HostError('HOST_ERR_DATA_DIR', `cannot create ${dir}: ${(err as Error).message}.`, { cause: err });
  }
  const tmpKey = `${keyFile}.${process.pid}.tmp`;
  const tmpCert = `${certFile}.${process.pid}.tmp`;
  try {
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3650',
      '-subj', `/CN=${SELF_SIGNED_NAME}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', tmpKey, '-out', tmpCert,
    ], { timeout: 30_000 });
    // openssl follows the umask; a private key is for the server's user only.
    await chmod(tmpKey, 0o600);
    await rename(tmpKey, keyFile);
    await rename(tmpCert, certFile);
  } catch (err) {
    await rm(tmpKey, { force: true });
    await rm(tmpCert, { force: true });
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the openssl command is not installed' : (err as Error).message;
    throw new HostError('HOST_ERR_TLS', `cannot generate a self-signed certificate in ${dir}: ${reason}. Install openssl or set tls: { cert, key } in the config.`, { cause: err });
  }
}
