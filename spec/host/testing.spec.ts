// The test kit (lib/host/testing.ts): mockModule runs a module's iq handlers, filters, routing and archives as the
// host does, so a module is tested without a server or a client session: roster get and set as an example.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError, xml, type ClientSession, type Stanza } from '../../lib/host/api.js';
import { mockModule } from '../../lib/host/testing.js';
import { roster } from '../../lib/host/modules/roster.js';

const NS_ROSTER = 'jabber:iq:roster';
const iq = (type: string, id: string, ...children: Stanza[]) => xml('iq', { type, id }, ...children);

describe('mockModule()', () => {
  describe('roster through request(), without a session', () => {
    it('answers a set with an empty result, then a get with the item and a version', async () => {
      const mock = mockModule({ manifest: roster.manifest });
      await roster.load(mock.api);
      const set = await mock.request(iq('set', 's1', xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'bob@localhost', name: 'Bob' }, xml('group', {}, 'Friends')))), 'alice@localhost/desk');
      assert.equal(set?.attrs.type, 'result');
      assert.equal(set?.attrs.id, 's1');
      assert.equal(set?.children.length, 0);

      const got = await mock.request(iq('get', 'g1', xml('query', { xmlns: NS_ROSTER })), 'alice@localhost/desk');
      assert.equal(got?.attrs.type, 'result');
      const query = got!.getChild('query', NS_ROSTER)!;
      assert.ok(query.attrs.ver, 'a roster version');
      const item = query.getChild('item')!;
      assert.deepEqual(item.attrs, { jid: 'bob@localhost', name: 'Bob', subscription: 'none' });
      assert.equal(item.getChildText('group'), 'Friends');
      await mock.unload();
    });

    it('answers another account\'s roster get as the host does (service-unavailable: nothing handles iq to a bare JID)', async () => {
      const mock = mockModule({ manifest: roster.manifest });
      await roster.load(mock.api);
      const answer = await mock.request(xml('iq', { type: 'get', id: 'x', to: 'bob@localhost' }, xml('query', { xmlns: NS_ROSTER })), 'alice@localhost/desk');
      assert.equal(answer?.attrs.type, 'error');
      assert.ok(answer?.getChild('error')?.getChild('service-unavailable'));
      await mock.unload();
      // Unloaded, nothing answers a get to the account's own roster either.
      const after = await mock.request(iq('get', 'g2', xml('query', { xmlns: NS_ROSTER })), 'alice@localhost/desk');
      assert.ok(after?.getChild('error')?.getChild('service-unavailable'));
    });
  });

  describe('#handleIq()', () => {
    it('replies with the payload, or with the StanzaError thrown', async () => {
      const mock = mockModule();
      mock.api.handleIq('get', 'urn:example', 'q', ({ stanza }) => {
        if (stanza.attrs.id === 'bad') throw new StanzaError('not-allowed');
        return xml('q', { xmlns: 'urn:example' }, 'ok');
      });
      const ok = await mock.request(xml('iq', { type: 'get', id: 'good', to: 'localhost' }, xml('q', { xmlns: 'urn:example' })), 'alice@localhost/a');
      assert.equal(ok?.getChild('q', 'urn:example')?.text(), 'ok');
      const refused = await mock.request(xml('iq', { type: 'get', id: 'bad', to: 'localhost' }, xml('q', { xmlns: 'urn:example' })), 'alice@localhost/a');
      assert.ok(refused?.getChild('error')?.getChild('not-allowed'));
    });
  });

  describe('#filter() / #sessionFilters()', () => {
    it('runs the module\'s filters by priority, and unload removes them', async () => {
      const mock = mockModule();
      const session = {} as ClientSession;
      mock.api.filter('stanzas/out', (s) => (s.attrs.type === 'drop' ? undefined : s), 1);
      mock.api.filter('stanzas/out', (s) => xml(s.name, { ...s.attrs, marked: 'yes' }), 0);
      const chain = mock.api.sessionFilters('stanzas/out');
      assert.equal(chain.run(xml('message', { type: 'drop' }), session), undefined);
      assert.equal(chain.run(xml('message', { type: 'chat' }), session)?.attrs.marked, 'yes');
      assert.equal(mock.api.sessionFilters('stanzas/in').isEmpty, true);
      await mock.unload();
      assert.equal(chain.isEmpty, true);
    });
  });

  describe('#openArchive()', () => {
    it('keeps items on SQLite in a temporary folder (ids, after/before), which unload removes', async () => {
      const mock = mockModule();
      const archive = mock.api.openArchive('offline');
      const first = await archive.append('alice@localhost', { with: 'bob@localhost', value: '<message/>' });
      await archive.append('alice@localhost', { with: 'carol@localhost', value: '<message/>' });
      const page = await archive.find('alice@localhost', { after: first });
      assert.deepEqual(page.items.map((i) => i.with), ['carol@localhost']);
      await assert.rejects(archive.find('alice@localhost', { before: 'unknown' }), (err: unknown) => err instanceof StanzaError && err.condition === 'item-not-found');
      await mock.unload();
      // The store went with its folder: the next use starts an empty one.
      assert.equal(await mock.api.openArchive('offline').count('alice@localhost'), 0);
      await mock.unload();
    });
  });

  it('takes option defaults from the manifest', () => {
    const mock = mockModule({ manifest: { id: 'm', description: 'd', options: { size: { type: 'integer', default: 5, description: 's' } } }, options: {} });
    assert.equal(mock.api.name, 'm');
    assert.equal(mock.api.option('size'), 5);
  });
});
