// Client streams on the wire (RFC 6120 §4-§7): features at each stage, stream errors, bind and conflict,
// legacy session, keepalives, the unauthenticated timeout and shutdown. Raw sockets, real server.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { HostError } from '../../../lib/host/util/errors.js';
import { RawClient, rawLogin, streamOpen } from './helpers.js';

const USERS: Array<[string, string]> = [
  ['alice@localhost', 'alice-pw'],
  ['bob@localhost', 'bob-pw'],
];

function plain(user: string, pw: string): string {
  return `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString('base64')}</auth>`;
}

describe('c2s streams', () => {
  let ts: TestServer;
  const clients: RawClient[] = [];
  const connect = async (port = ts.c2sPort, opts: { tls?: boolean } = {}) => {
    const c = await RawClient.connect(port, opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    ts = await startTestServer({ config: { modules_enabled: [] }, users: USERS });
  });

  after(async () => {
    for (const c of clients) c.close();
    await ts?.stop();
  });

  describe('stream features', () => {
    it('offers only required STARTTLS before TLS, no SASL mechanisms', async () => {
      const c = await connect();
      c.send(streamOpen());
      const [features] = await c.waitFor(/<stream:features>.*?<\/stream:features>/s, 'features');
      assert.match(features, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls>/);
      assert.doesNotMatch(features, /mechanism/);
    });

    it('answers the header with from, id and version 1.0', async () => {
      const c = await connect();
      c.send(streamOpen());
      const [header] = await c.waitFor(/<stream:stream [^>]*>/, 'header');
      assert.match(header, /from='localhost'/);
      assert.match(header, /version='1.0'/);
      assert.match(header, /id='[^']+'/);
    });

    it('offers SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN after STARTTLS, never a -PLUS', async () => {
      const c = await connect();
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await c.waitFor(/<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
      await c.starttls();
      c.send(streamOpen());
      const [features] = await c.waitFor(/<stream:features>.*?<\/stream:features>/s, 'features after TLS');
      const mechanisms = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]);
      assert.deepEqual(mechanisms, ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
      assert.doesNotMatch(features, /starttls|PLUS/);
    });

    it('offers SASL at once on a direct TLS port (XEP-0368)', async () => {
      const c = await connect(ts.c2sTlsPort!, { tls: true });
      c.send(streamOpen());
      const [features] = await c.waitFor(/<stream:features>.*?<\/stream:features>/s, 'features');
      assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
      assert.doesNotMatch(features, /starttls/);
    });

    it('offers bind and an optional legacy session after SASL', async () => {
      const c = await connect(ts.c2sTlsPort!, { tls: true });
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      c.send(plain('alice', 'alice-pw'));
      await c.waitFor(/<success/);
      c.send(streamOpen());
      const [features] = await c.waitFor(/<stream:features>.*?<\/stream:features>/s, 'features after SASL');
      assert.match(features, /<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
      assert.match(features, /<session xmlns="urn:ietf:params:xml:ns:xmpp-session"><optional\/><\/session>/);
      assert.match(features, /<ver xmlns="urn:xmpp:features:rosterver"\/>/);
      assert.doesNotMatch(features, /mechanism/);
    });
  });

  describe('authentication', () => {
    it('refuses PLAIN before TLS with encryption-required', async () => {
      const c = await connect();
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      c.send(plain('alice', 'alice-pw'));
      await c.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><encryption-required\/>/, 'encryption-required');
      // The refusal is about the plaintext stream only: after STARTTLS the same login works.
      c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await c.waitFor(/<proceed /);
      await c.starttls();
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      c.send(plain('alice', 'alice-pw'));
      await c.waitFor(/<success /, 'success after STARTTLS');
    });

    it('answers not-authorized to a wrong password', async () => {
      const c = await connect(ts.c2sTlsPort!, { tls: true });
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      c.send(plain('alice', 'wrong'));
      await c.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/, 'not-authorized');
    });

    it('closes the stream with not-authorized when a stanza comes before authentication', async () => {
      const c = await connect();
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      c.send("<message to='bob@localhost'><body>hi</body></message>");
      await c.waitFor(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/, 'stream error');
      await c.waitFor(/<\/stream:stream>/);
      await c.waitClosed();
    });
  });

  describe('stream errors', () => {
    it('host-unknown for a domain this server does not serve', async () => {
      const c = await connect();
      c.send(streamOpen('example.org'));
      await c.waitFor(/<stream:stream [^>]*>/, 'the header comes first (RFC 6120 §4.9.1.1)');
      await c.waitFor(/<host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await c.waitClosed();
    });

    it('unsupported-version for version 2.0 and for a missing version', async () => {
      for (const header of [streamOpen().replace(/ version='1.0'>$/, " version='2.0'>"), streamOpen().replace(/ version='1.0'>$/, '>')]) {
        const c = await connect();
        c.send(header);
        await c.waitFor(/<unsupported-version xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
        await c.waitClosed();
      }
    });

    it('invalid-namespace for a server-to-server stream on the client port', async () => {
      const c = await connect();
      c.send(streamOpen().replace("xmlns='jabber:client'", "xmlns='jabber:server'"));
      await c.waitFor(/<invalid-namespace /);
      await c.waitClosed();
    });

    it('improper-addressing without a to', async () => {
      const c = await connect();
      c.send(streamOpen().replace(" to='localhost'", ''));
      await c.waitFor(/<improper-addressing /);
      await c.waitClosed();
    });

    it('not-well-formed for mismatched tags, with the header sent first', async () => {
      const c = await connect();
      c.send(`${streamOpen()}<message><body></message>`);
      await c.waitFor(/<stream:stream /);
      await c.waitFor(/<not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await c.waitClosed();
    });

    it('restricted-xml for a comment and for a processing instruction', async () => {
      for (const bad of ['<!-- hello -->', '<?evil?>']) {
        const c = await connect();
        c.send(`${streamOpen()}${bad}`);
        await c.waitFor(/<restricted-xml xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
        await c.waitClosed();
      }
    });
  });

  describe('session', () => {
    it('binds a server-generated resource when none is asked', async () => {
      const { raw, jid } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw');
      clients.push(raw);
      assert.match(jid, /^alice@localhost\/.+$/);
    });

    it('answers the legacy session request (RFC 3921 §3)', async () => {
      const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw', 'legacy');
      clients.push(raw);
      raw.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      await raw.waitFor(/<iq type="result" id="sess1"\/>/);
    });

    it('replaces the old session when the same full JID binds again (conflict)', async () => {
      const first = await rawLogin(ts.c2sPort, 'bob', 'bob-pw', 'phone');
      clients.push(first.raw);
      const second = await rawLogin(ts.c2sPort, 'bob', 'bob-pw', 'phone');
      clients.push(second.raw);
      assert.equal(second.jid, 'bob@localhost/phone');
      await first.raw.waitFor(/<conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/, 'conflict on the old stream');
      await first.raw.waitClosed();
      // The new session is the one that gets answers.
      second.raw.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await second.raw.waitFor(/<iq type="result" id="p1"/);
    });

    it('tolerates whitespace keepalives between stanzas', async () => {
      const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw');
      clients.push(raw);
      for (let i = 0; i < 5; i++) raw.send(' ');
      raw.send("\n<iq type='get' id='ka' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq> ");
      await raw.waitFor(/<iq type="result" id="ka"/);
    });

    it('answers an iq without id with bad-request', async () => {
      const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw');
      clients.push(raw);
      raw.send("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await raw.waitFor(/<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    });

    it('closes the stream when the client closes it', async () => {
      const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw');
      clients.push(raw);
      raw.send('</stream:stream>');
      await raw.waitFor(/<\/stream:stream>/);
      await raw.waitClosed();
    });
  });
});

describe('c2s settings', () => {
  it('closes an idle unauthenticated stream after c2s_timeout with connection-timeout', async () => {
    const ts = await startTestServer({ config: { modules_enabled: [], c2s_timeout: 1 } });
    const c = await RawClient.connect(ts.c2sPort);
    try {
      c.send(streamOpen());
      await c.waitFor(/<connection-timeout xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/, 'timeout', 4_000);
      await c.waitClosed();
    } finally {
      c.close();
      await ts.stop();
    }
  });

  it('offers PLAIN before TLS when c2s_require_encryption is false', async () => {
    const ts = await startTestServer({ config: { modules_enabled: [], c2s_require_encryption: false }, users: USERS });
    const c = await RawClient.connect(ts.c2sPort);
    try {
      c.send(streamOpen());
      const [features] = await c.waitFor(/<stream:features>.*?<\/stream:features>/s);
      assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
      assert.doesNotMatch(features, /<required\/>/);
      c.send(plain('alice', 'alice-pw'));
      await c.waitFor(/<success/);
    } finally {
      c.close();
      await ts.stop();
    }
  });

  it('refuses a stanza over c2s_stanza_size_limit with policy-violation', async () => {
    const ts = await startTestServer({ config: { modules_enabled: [], c2s_stanza_size_limit: 10_000 }, users: USERS });
    const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw');
    try {
      raw.send(`<message to='bob@localhost'><body>${'x'.repeat(9_000)}</body></message>`);
      raw.send(`<message to='bob@localhost'><body>${'x'.repeat(11_000)}</body></message>`);
      await raw.waitFor(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await raw.waitClosed();
    } finally {
      raw.close();
      await ts.stop();
    }
  });

  it('slows down an address after auth_failures_per_minute failures, even with the right password', { timeout: 20_000 }, async () => {
    const ts = await startTestServer({ config: { modules_enabled: [], auth_failures_per_minute: 2 }, users: USERS });
    const c = await RawClient.connect(ts.c2sTlsPort!, { tls: true });
    try {
      c.send(streamOpen());
      await c.waitFor(/<\/stream:features>/);
      for (let i = 0; i < 2; i++) {
        c.send(plain('alice', 'wrong'));
        await c.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure>/, `failure ${i + 1}`);
      }
      const started = Date.now();
      c.send(plain('alice', 'alice-pw'));
      const [failure] = await c.waitFor(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>.*?<\/failure>/s, 'the throttled failure', 10_000);
      assert.match(failure, /Too many failed attempts/);
      assert.ok(Date.now() - started >= 900, 'the answer was delayed');
    } finally {
      c.close();
      await ts.stop();
    }
  });

  it('sends system-shutdown and </stream:stream> to every session when the server stops', async () => {
    const ts = await startTestServer({ config: { modules_enabled: [] }, users: USERS });
    const { raw } = await rawLogin(ts.c2sPort, 'alice', 'alice-pw');
    const unauthenticated = await RawClient.connect(ts.c2sPort);
    unauthenticated.send(streamOpen());
    await unauthenticated.waitFor(/<\/stream:features>/);
    const stopping = ts.stop();
    await raw.waitFor(/<system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>.*<\/stream:stream>/s);
    await unauthenticated.waitFor(/<system-shutdown .*<\/stream:stream>/s);
    raw.close();
    unauthenticated.close();
    await stopping;
  });
});

describe('c2s listener', () => {
  it('fails the start with HOST_ERR_PORT_IN_USE naming the c2s port that is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        startTestServer({ config: { c2s_ports: [port], c2s_direct_tls_ports: [] } }),
        (err: unknown) => err instanceof HostError && err.code === 'HOST_ERR_PORT_IN_USE' && err.message.includes(`c2s port ${port} on 127.0.0.1 is already in use`),
      );
    } finally {
      blocker.close();
    }
  });
});
