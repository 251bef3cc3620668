// SCRAM server against the test vectors of RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { decodeSaslName, parseClientFirst, ScramServer, decoyCredentials, type ScramHash } from '../../../../lib/host/util/sasl/sasl-scram.js';
import type { ScramCredentials } from '../../../../lib/host/api.js';

function credentials(password: string, saltB64: string, iterations: number, hash: ScramHash): ScramCredentials {
  const salt = Buffer.from(saltB64, 'base64');
  const salted = pbkdf2Sync(password, salt, iterations, hash === 'sha1' ? 20 : 32, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return {
    salt,
    iterations,
    storedKey: createHash(hash).update(clientKey).digest(),
    serverKey: createHmac(hash, salted).update('Server Key').digest(),
  };
}

const VECTORS = [
  {
    rfc: 'RFC 5802',
    hash: 'sha1' as const,
    clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
    serverNonce: '3rfcNHYJY1ZVvWVs7j',
    salt: 'QSXCR+Q6sek8bf92',
    serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
    clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
  },
  {
    rfc: 'RFC 7677',
    hash: 'sha256' as const,
    clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
    serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
    serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  },
];

describe('ScramServer', () => {
  for (const v of VECTORS) {
    describe(`${v.rfc} (${v.hash})`, () => {
      const server = (known = true) =>
        new ScramServer(v.hash, {
          credentials: async (u) => (known && u === 'user' ? credentials('pencil', v.salt, 4096, v.hash) : undefined),
          decoy: async (u) => decoyCredentials(Buffer.alloc(32, 1), u, v.hash, 4096),
          nonce: () => v.serverNonce,
        });

      it('sends the server-first-message of the test vector', async () => {
        const step = await server().start(v.clientFirst);
        assert.equal(step.kind, 'challenge');
        assert.equal(step.kind === 'challenge' && step.data.toString(), v.serverFirst);
      });

      it('accepts the proof and answers the ServerSignature', async () => {
        const s = server();
        await s.start(v.clientFirst);
        const step = s.finish(v.clientFinal);
        assert.equal(step.kind, 'success');
        assert.equal(step.kind === 'success' && step.data?.toString(), v.serverFinal);
        assert.equal(step.kind === 'success' && step.username, 'user');
      });

      it('refuses a wrong proof as a credential failure', async () => {
        const s = server();
        await s.start(v.clientFirst);
        const bad = v.clientFinal.replace(/p=.{4}/, 'p=AAAA');
        const step = s.finish(bad);
        assert.deepEqual(step, { kind: 'failure', condition: 'not-authorized', isCredentialFailure: true });
      });

      it('refuses an unknown user even with the right proof for the decoy salt', async () => {
        const s = server(false);
        const first = await s.start(v.clientFirst);
        assert.equal(first.kind, 'challenge', 'an unknown user still gets a challenge (no enumeration)');
        const step = s.finish(v.clientFinal);
        assert.equal(step.kind, 'failure');
      });

      it('refuses a changed nonce', async () => {
        const s = server();
        await s.start(v.clientFirst);
        const step = s.finish(v.clientFinal.replace('r=', 'r=x'));
        assert.equal(step.kind === 'failure' && step.condition, 'malformed-request');
      });
    });
  }

  it('gives the same decoy salt for the same unknown user, and a different one for another', () => {
    const secret = Buffer.alloc(32, 7);
    assert.deepEqual(decoyCredentials(secret, 'a', 'sha1', 4096).salt, decoyCredentials(secret, 'a', 'sha1', 4096).salt);
    assert.notDeepEqual(decoyCredentials(secret, 'a', 'sha1', 4096).salt, decoyCredentials(secret, 'b', 'sha1', 4096).salt);
  });
});

describe('parseClientFirst()', () => {
  it('refuses channel binding (p=), since no -PLUS mechanism is offered', () => {
    const r = parseClientFirst('p=tls-unique,,n=user,r=abc');
    assert.equal('kind' in r && r.kind === 'failure' && r.condition, 'malformed-request');
  });

  it('accepts y (client could bind, thinks we cannot)', () => {
    const r = parseClientFirst('y,,n=user,r=abc');
    assert.ok(!('kind' in r));
  });

  it('refuses a mandatory extension', () => {
    const r = parseClientFirst('n,,m=ext,n=user,r=abc');
    assert.ok('kind' in r && r.kind === 'failure');
  });

  it('decodes =2C and =3D in the username and authzid', () => {
    const r = parseClientFirst('n,a=me=2Cyou,n=a=3Db,r=abc');
    assert.ok(!('kind' in r));
    assert.equal(r.username, 'a=b');
    assert.equal(r.authzid, 'me,you');
  });

  it('refuses a stray = in a saslname', () => {
    assert.equal(decodeSaslName('a=b'), undefined);
  });

  it('refuses empty or missing parts', () => {
    for (const bad of ['', 'n,,', 'n,,n=,r=abc', 'n,,n=user', 'n,,r=abc,n=user', 'x,,n=user,r=abc']) {
      const r = parseClientFirst(bad);
      assert.ok('kind' in r && r.kind === 'failure', `refuses ${JSON.stringify(bad)}`);
    }
  });
});
