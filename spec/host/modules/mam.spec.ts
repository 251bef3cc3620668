// mam (XEP-0313) on the real server through raw c2s sessions and post_msg: what is archived and when (on disk before
// the 201), XEP-0359 stanza ids, queries with data-form filters and XEP-0059 paging both ways, preferences, expiry,
// no offline push after an archive fetch, account deletion, and the option vocabulary.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import parse from '@xmpp/xml/lib/parse.js';
import { xml, type Element, type ModuleApi } from '../../../lib/host/api.js';
import { readConfig } from '../../../lib/host/core/server.js';
import { manifest, type MamOptions, type MamService } from '../../../lib/host/modules/mam/index.js';
import { parseDateTime, parseQuery } from '../../../lib/host/modules/mam/query.js';
import { copyForArchive, shouldArchive } from '../../../lib/host/modules/mam/rules.js';
import { serialize } from '../../../lib/host/util/serialize.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { basic, request } from '../../post_msg/helpers/http.js';
import { rawLogins, type RawClient } from '../c2s/helpers.js';

const USERS: Array<[string, string]> = [
  ['alice@localhost', 'alice-pw'],
  ['bob@localhost', 'bob-pw'],
  ['carol@localhost', 'carol-pw'],
  ['dora@localhost', 'dora-pw'],
  ['erin@localhost', 'erin-pw'],
  ['fred@localhost', 'fred-pw'],
];

const NS = 'urn:xmpp:mam:2';

interface QueryAnswer {
  /** The forwarded messages, in the order they arrived, with their result ids and delay stamps. */
  results: Array<{ id: string; queryid?: string; stamp: string; body?: string; message: Element }>;
  iq: Element;
  fin?: Element;
  first?: string;
  last?: string;
  count?: number;
}

/** Everything the server sent before the iq answer with `id`, parsed; the answer itself. */
async function ask(raw: RawClient, id: string, iq: string): Promise<{ before: Element[]; iq: Element }> {
  // Drop what came earlier (the tail of the login), so only whole stanzas are parsed.
  await raw.waitFor(/$/, 'nothing');
  raw.send(iq);
  const m = await raw.waitFor(new RegExp(`<iq (?=[^>]*\\bid="${id}")[^>]*?(?:/>|>.*?</iq>)`, 's'), `the answer to ${id}`);
  const text = m.input.slice(0, m.index);
  const root = parse(`<r xmlns="jabber:client">${text}${m[0]}</r>`);
  const elements = root.getChildElements();
  return { before: elements.slice(0, -1), iq: elements.at(-1)! };
}

let counter = 0;

async function mamQuery(raw: RawClient, opts: { fields?: Record<string, string | string[]>; rsm?: string; queryid?: string; extra?: string } = {}): Promise<QueryAnswer> {
  const id = `q${++counter}`;
  const fields = Object.entries(opts.fields ?? {})
    .map(([name, v]) => `<field var='${name}'>${(Array.isArray(v) ? v : [v]).map((x) => `<value>${x}</value>`).join('')}</field>`)
    .join('');
  const form = opts.fields ? `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${NS}</value></field>${fields}</x>` : '';
  const rsm = opts.rsm !== undefined ? `<set xmlns='http://jabber.org/protocol/rsm'>${opts.rsm}</set>` : '';
  const qid = opts.queryid ? ` queryid='${opts.queryid}'` : '';
  const { before, iq } = await ask(raw, id, `<iq type='set' id='${id}'><query xmlns='${NS}'${qid}>${form}${rsm}${opts.extra ?? ''}</query></iq>`);
  const results = before
    .filter((el) => el.is('message') && el.getChild('result', NS))
    .map((el) => {
      const result = el.getChild('result', NS)!;
      const forwarded = result.getChild('forwarded', 'urn:xmpp:forward:0')!;
      const message = forwarded.getChild('message')!;
      return { id: result.attrs.id as string, queryid: result.attrs.queryid as string | undefined, stamp: forwarded.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp as string, body: message.getChildText('body') ?? undefined, message };
    });
  const fin = iq.getChild('fin', NS);
  const set = fin?.getChild('set', 'http://jabber.org/protocol/rsm');
  const count = set?.getChildText('count');
  return { results, iq, fin, first: set?.getChildText('first') ?? undefined, last: set?.getChildText('last') ?? undefined, count: count == null ? undefined : Number(count) };
}

const bodies = (a: QueryAnswer): string[] => a.results.map((r) => r.body ?? '');
const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

describe('mam module', () => {
  describe('manifest and config', () => {
    it('is on by default (modules_enabled) and off when a config leaves it out', () => {
      const { config } = readConfig({ config: { virtual_hosts: { localhost: {} } } });
      assert.ok(config.modules_enabled.includes('mam'));
      const { config: without } = readConfig({ config: { virtual_hosts: { localhost: {} }, modules_enabled: [] } });
      assert.ok(!without.modules_enabled.includes('mam'));
    });

    it('takes archive_expires_after as a duration or never, and refuses anything else', () => {
      const read = (v: unknown) => readConfig({ config: { virtual_hosts: { localhost: {} }, mam: { archive_expires_after: v } } }).config;
      assert.equal(read('30d').module_options.mam!.archive_expires_after, 30 * 86400);
      assert.equal(read('never').module_options.mam!.archive_expires_after, 'never');
      assert.throws(() => read('forever'), /archive_expires_after.*never/s);
      assert.throws(() => readConfig({ config: { virtual_hosts: { localhost: {} }, mam: { max_archive_query_results: 0 } } }), /max_archive_query_results/);
    });

    it('declares the options load() reads, with Prosody\'s defaults', () => {
      const defaults: MamOptions = { archive_expires_after: 604800, max_archive_query_results: 50 };
      assert.deepEqual(Object.keys(manifest.options).sort(), Object.keys(defaults).sort());
      for (const [key, value] of Object.entries(defaults)) assert.equal(manifest.options[key as keyof MamOptions].default, value);
    });
  });

  describe('rules', () => {
    it('archives chat and normal messages with content, never headlines, groupchat or no-store ones (Prosody should_store)', () => {
      const body = xml('body', {}, 'x');
      assert.equal(shouldArchive(xml('message', { type: 'chat' }, body)).archive, true);
      assert.equal(shouldArchive(xml('message', {}, body)).archive, true);
      assert.equal(shouldArchive(xml('message', { type: 'headline' }, body)).archive, false);
      assert.equal(shouldArchive(xml('message', { type: 'groupchat' }, body)).archive, false);
      assert.equal(shouldArchive(xml('message', { type: 'chat' }, body, xml('no-store', { xmlns: 'urn:xmpp:hints' }))).archive, false);
      assert.equal(shouldArchive(xml('message', { type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }))).archive, false);
      assert.equal(shouldArchive(xml('message', { type: 'chat' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'a' }))).archive, true);
      assert.equal(shouldArchive(xml('message', { type: 'error', to: 'a@localhost/r' }, body)).archive, true);
      assert.equal(shouldArchive(xml('message', { type: 'error', to: 'a@localhost' }, body)).archive, false);
    });

    it('keeps a message without chat states and without stanza-ids naming the account, never changing the original', () => {
      const plain = xml('message', { type: 'chat' }, xml('body', {}, 'x'), xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: 'other@localhost', id: 'o' }));
      assert.equal(copyForArchive(plain, 'bob@localhost'), plain, 'nothing to leave out: the message itself, no copy');
      const busy = xml(
        'message',
        { type: 'chat' },
        xml('body', {}, 'y'),
        xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }),
        xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: 'Bob@LOCALHOST', id: 'forged' }),
      );
      const before = serialize(busy);
      const kept = copyForArchive(busy, 'bob@localhost')!;
      assert.notEqual(kept, busy);
      assert.equal(serialize(kept), '<message type="chat"><body>y</body></message>');
      assert.equal(serialize(busy), before, 'the original is untouched');
      assert.equal(copyForArchive(xml('message', {}, xml('gone', { xmlns: 'http://jabber.org/protocol/chatstates' })), 'bob@localhost'), undefined);
    });

    it('reads XEP-0082 date-times and refuses what is not one', () => {
      assert.equal(parseDateTime('2024-05-01T12:00:00Z')?.toISOString(), '2024-05-01T12:00:00.000Z');
      assert.equal(parseDateTime('2024-05-01T14:00:00.123456+02:00')?.toISOString(), '2024-05-01T12:00:00.123Z');
      for (const bad of ['2024-05-01', '2024-02-30T00:00:00Z', 'yesterday', '2024-05-01T25:00:00Z', '']) assert.equal(parseDateTime(bad), undefined, bad);
    });

    it('refuses a form of another FORM_TYPE, an unknown field and paging by index', () => {
      const q = (inner: string) => parse(`<query xmlns='${NS}'>${inner}</query>`);
      assert.throws(() => parseQuery(q("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>")), /FORM_TYPE/);
      assert.throws(() => parseQuery(q(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>${NS}</value></field><field var='fulltext'><value>x</value></field></x>`)), /fulltext/);
      assert.throws(() => parseQuery(q("<set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set>")), (e: { condition?: string }) => e.condition === 'feature-not-implemented');
      assert.throws(() => parseQuery(q("<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>")), /max/);
      assert.deepEqual(parseQuery(q("<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set>")), { flipPage: false, max: 10, before: true });
    });
  });

  describe('on the server', () => {
    let ts: TestServer;
    let api: ModuleApi;
    let db: Database.Database;
    const { login, closeAll } = rawLogins(() => ts.c2sPort);
    /** Rows on disk, read through another connection: what a crash right now would keep. */
    const onDisk = (user: string): Array<{ key: string; with_jid: string; value: string }> =>
      db.prepare("SELECT key, with_jid, value FROM archive WHERE store = 'archive' AND user = ? ORDER BY sort").all(user) as Array<{ key: string; with_jid: string; value: string }>;
    const send = (from: string, to: string, body: string, type = 'chat') => api.send(xml('message', { from, to, type }, xml('body', {}, body)));

    before(async () => {
      ts = await startTestServer({ config: { modules_enabled: ['post_msg', 'mam'] }, users: USERS });
      api = ts.server.modules.apiOf('localhost', 'mam')!;
      db = new Database(join(ts.dataDir, 'xmppd.sqlite'), { readonly: true, fileMustExist: true });
    });

    after(async () => {
      closeAll();
      db?.close();
      await ts?.stop();
    });

    it('has a message post_msg sends on disk for the recipient and as sent by the account when the 201 arrives', async () => {
      const res = await request(`${ts.httpUrl}/msg/bob`, { headers: { Authorization: basic('alice@localhost', 'alice-pw'), 'Content-Type': 'text/plain' }, body: 'db1 is down' });
      assert.equal(res.status, 201, res.text);
      // Read at once, through another connection, with no flush of the server's pending writes.
      const received = onDisk('bob@localhost');
      const sent = onDisk('alice@localhost');
      assert.equal(received.length, 1);
      assert.equal(received[0]!.with_jid, 'alice@localhost');
      assert.match(received[0]!.value, /<body>db1 is down<\/body>/);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.with_jid, 'bob@localhost');
      assert.match(sent[0]!.value, /<body>db1 is down<\/body>/);
    });

    it('gives a fetching client what it missed and then pushes no offline copy; another session still gets them', async () => {
      // bob was offline for the message above: it is in his archive and in offline storage.
      const phone = await login('bob', 'phone');
      const fetched = await mamQuery(phone, { queryid: 'sync' });
      assert.deepEqual(bodies(fetched), ['db1 is down']);
      assert.equal(fetched.results[0]!.queryid, 'sync');
      assert.equal(fetched.fin?.attrs.complete, 'true');
      const stamp = parseDateTime(fetched.results[0]!.stamp);
      assert.ok(stamp && Math.abs(stamp.getTime() - Date.now()) < 60_000, 'the delay stamp is when it was archived');
      phone.send('<presence/>');
      await phone.waitFor(/<presence[^>]*\/>|<presence[^>]*>.*?<\/presence>/s, 'own presence');
      // A ping answered after the presence was handled: by then an offline push would have been written.
      await ask(phone, 'barrier1', "<iq type='get' id='barrier1'><ping xmlns='urn:xmpp:ping'/></iq>");
      assert.doesNotMatch(phone.text, /db1 is down/, 'no offline push to a session that fetched the archive');

      const desktop = await login('bob', 'desktop');
      desktop.send('<presence/>');
      const [pushed] = await desktop.waitFor(/<message [^>]*>.*?<body>db1 is down<\/body>.*?<\/message>/s, 'the offline push to a session that did not fetch');
      assert.match(pushed, /<delay xmlns="urn:xmpp:delay"/);
      assert.match(pushed, new RegExp(`<stanza-id xmlns="urn:xmpp:sid:0" by="bob@localhost" id="${fetched.results[0]!.id}"/>`), 'the stored copy carries the archive id');
      phone.close();
      desktop.close();
    });

    it('marks a delivered message with the archive id (XEP-0359), removes a forged one and keeps origin-id', async () => {
      const carol = await login('carol', 'c1');
      carol.send('<presence/>');
      await carol.waitFor(/<presence[^>]*\/>|<presence[^>]*>.*?<\/presence>/s, 'own presence');
      const alice = await login('alice', 'a1');
      alice.send("<message to='carol@localhost' type='chat' id='x1'><body>hi carol</body><origin-id xmlns='urn:xmpp:sid:0' id='orig-1'/><stanza-id xmlns='urn:xmpp:sid:0' by='carol@localhost' id='forged'/></message>");
      const [delivered] = await carol.waitFor(/<message [^>]*>.*?<body>hi carol<\/body>.*?<\/message>/s, 'the message');
      const el = parse(delivered);
      const ids = el.getChildren('stanza-id', 'urn:xmpp:sid:0');
      assert.equal(ids.length, 1, delivered);
      assert.equal(ids[0]!.attrs.by, 'carol@localhost');
      assert.notEqual(ids[0]!.attrs.id, 'forged');
      assert.equal(el.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id, 'orig-1');
      const byId = await mamQuery(carol, { fields: { ids: [ids[0]!.attrs.id as string] } });
      assert.deepEqual(bodies(byId), ['hi carol']);
      assert.doesNotMatch(onDisk('carol@localhost')[0]!.value, /forged/);
      // The sender's own archive has it as sent, with the other party.
      const mine = await mamQuery(alice, { fields: { with: 'carol@localhost' } });
      assert.deepEqual(bodies(mine), ['hi carol']);
      assert.equal(mine.results[0]!.message.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id, 'orig-1');
      carol.close();
      alice.close();
    });

    describe('paging 120 messages', () => {
      let dora: RawClient;
      before(async () => {
        for (let i = 1; i <= 120; i++) await send(i % 10 === 0 ? 'erin@localhost' : 'alice@localhost', 'dora@localhost', `m${i}`);
        dora = await login('dora', 'pager');
      });

      it('pages forward with <after/>: 50, 50, 20, with first, last, count and complete', async () => {
        const seen: string[] = [];
        let after: string | undefined;
        const completes: string[] = [];
        for (;;) {
          const page = await mamQuery(dora, { rsm: `<max>50</max>${after ? `<after>${after}</after>` : ''}` });
          assert.equal(page.count, 120);
          assert.equal(page.first, page.results[0]?.id);
          assert.equal(page.last, page.results.at(-1)?.id);
          seen.push(...bodies(page));
          completes.push(String(page.fin?.attrs.complete));
          if (page.fin?.attrs.complete === 'true') break;
          after = page.last;
        }
        assert.deepEqual(seen, range(1, 120));
        assert.deepEqual(completes, ['false', 'false', 'true']);
      });

      it('pages backward from the end with <before/>, each page oldest first', async () => {
        const pages: string[][] = [];
        let before = '';
        for (;;) {
          const page = await mamQuery(dora, { rsm: `<max>50</max>${before ? `<before>${before}</before>` : '<before/>'}` });
          pages.push(bodies(page));
          assert.equal(page.first, page.results[0]?.id, 'first is the oldest of the page');
          if (page.fin?.attrs.complete === 'true') break;
          before = page.first!;
        }
        assert.deepEqual(pages, [range(71, 120), range(21, 70), range(1, 20)]);
      });

      it('caps <max/> at max_archive_query_results and defaults to 20; <max>0</max> only counts', async () => {
        assert.equal((await mamQuery(dora, { rsm: '<max>500</max>' })).results.length, 50);
        assert.equal((await mamQuery(dora)).results.length, 20);
        const counted = await mamQuery(dora, { rsm: '<max>0</max>' });
        assert.equal(counted.results.length, 0);
        assert.equal(counted.count, 120);
      });

      it('filters by with, start and end, before-id and after-id, ids; flip-page reverses a page', async () => {
        const fromErin = await mamQuery(dora, { fields: { with: 'erin@localhost' }, rsm: '<max>50</max>' });
        assert.deepEqual(bodies(fromErin), ['m10', 'm20', 'm30', 'm40', 'm50', 'm60', 'm70', 'm80', 'm90', 'm100', 'm110', 'm120']);
        assert.equal(fromErin.count, 12);
        // A full JID filters by its bare JID, as Prosody does.
        assert.equal((await mamQuery(dora, { fields: { with: 'erin@localhost/phone' } })).count, 12);

        const all = (await mamQuery(dora, { rsm: '<max>50</max>' })).results;
        const [m5, m9] = [all[4]!, all[8]!];
        const between = await mamQuery(dora, { fields: { 'after-id': m5.id, 'before-id': m9.id } });
        assert.deepEqual(bodies(between), ['m6', 'm7', 'm8']);
        const picked = await mamQuery(dora, { fields: { ids: [m9.id, m5.id] } });
        assert.deepEqual(bodies(picked), ['m5', 'm9']);

        // Stamps are whole milliseconds apart at least as often as not: check the bounds hold, not an exact slice.
        const windowed = await mamQuery(dora, { fields: { start: m5.stamp, end: m9.stamp }, rsm: '<max>50</max>' });
        const inWindow = bodies(windowed);
        assert.ok(inWindow.includes('m5') && inWindow.includes('m9'), inWindow.join());
        for (const r of windowed.results) assert.ok(r.stamp >= m5.stamp && r.stamp <= m9.stamp);
        const future = await mamQuery(dora, { fields: { start: '2999-01-01T00:00:00Z' } });
        assert.equal(future.count, 0);
        assert.equal(future.fin?.attrs.complete, 'true');

        const flipped = await mamQuery(dora, { rsm: '<max>3</max>', extra: '<flip-page/>' });
        assert.deepEqual(bodies(flipped), ['m3', 'm2', 'm1']);
      });

      it('answers item-not-found for an unknown id and bad-request for a bad form', async () => {
        const unknown = await mamQuery(dora, { rsm: '<after>no-such-id</after>' });
        assert.equal(unknown.iq.attrs.type, 'error');
        assert.ok(unknown.iq.getChild('error')?.getChild('item-not-found'), String(unknown.iq));
        const badStart = await mamQuery(dora, { fields: { start: 'yesterday' } });
        assert.ok(badStart.iq.getChild('error')?.getChild('bad-request'));
        const badWith = await mamQuery(dora, { fields: { with: 'a@b@c' } });
        assert.ok(badWith.iq.getChild('error')?.getChild('bad-request'));
      });

      it('serves the form, the metadata, and the features on the account', async () => {
        const form = await ask(dora, 'f1', `<iq type='get' id='f1'><query xmlns='${NS}'/></iq>`);
        const vars = form.iq.getChild('query', NS)!.getChild('x', 'jabber:x:data')!.getChildren('field').map((f) => f.attrs.var);
        assert.deepEqual(vars, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
        const meta = await ask(dora, 'md1', `<iq type='get' id='md1'><metadata xmlns='${NS}'/></iq>`);
        const md = meta.iq.getChild('metadata', NS)!;
        assert.ok(md.getChild('start')?.attrs.id && md.getChild('end')?.attrs.id);
        const disco = await ask(dora, 'd1', "<iq type='get' id='d1' to='dora@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        const features = disco.iq.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
        for (const f of [NS, `${NS}#extended`, 'urn:xmpp:sid:0']) assert.ok(features.includes(f), f);
      });

      it('does not let an account read another one\'s archive', async () => {
        const other = await ask(dora, 'o1', `<iq type='set' id='o1' to='alice@localhost'><query xmlns='${NS}'/></iq>`);
        assert.equal(other.iq.attrs.type, 'error');
        assert.equal(other.before.filter((el) => el.getChild('result', NS)).length, 0);
      });
    });

    it('keeps preferences per account: never stops archiving, an always list beats it, roster asks the roster', async () => {
      const fred = await login('fred', 'prefs');
      const get = await ask(fred, 'p1', `<iq type='get' id='p1'><prefs xmlns='${NS}'/></iq>`);
      assert.equal(get.iq.getChild('prefs', NS)?.attrs.default, 'always');
      const set = await ask(fred, 'p2', `<iq type='set' id='p2'><prefs xmlns='${NS}' default='never'><always><jid>erin@localhost</jid></always><never/></prefs></iq>`);
      assert.equal(set.iq.attrs.type, 'result');
      assert.equal(set.iq.getChild('prefs', NS)?.getChild('always')?.getChildText('jid'), 'erin@localhost');
      await send('alice@localhost', 'fred@localhost', 'not kept');
      await send('erin@localhost', 'fred@localhost', 'kept');
      assert.deepEqual(onDisk('fred@localhost').map((r) => r.with_jid), ['erin@localhost']);
      const bad = await ask(fred, 'p3', `<iq type='set' id='p3'><prefs xmlns='${NS}' default='sometimes'/></iq>`);
      assert.ok(bad.iq.getChild('error')?.getChild('bad-request'));
      await ask(fred, 'p4', `<iq type='set' id='p4'><prefs xmlns='${NS}' default='roster'/></iq>`);
      await send('carol@localhost', 'fred@localhost', 'not on the roster');
      await ask(fred, 'r1', "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>");
      await send('carol@localhost', 'fred@localhost', 'on the roster');
      assert.deepEqual(onDisk('fred@localhost').map((r) => /<body>([^<]*)/.exec(r.value)![1]), ['kept', 'on the roster']);
      fred.close();
    });

    it('deletes expired messages (archive_expires_after, a week by default) and nothing newer', async () => {
      const mam = (api as ModuleApi<MamOptions>).depends('mam') as MamService;
      const before = onDisk('dora@localhost').length;
      assert.ok(before >= 120);
      assert.equal(await mam.cleanup(new Date(Date.now() + 6 * 86400_000)), 0, 'nothing is a week old yet');
      const deleted = await mam.cleanup(new Date(Date.now() + 8 * 86400_000));
      assert.ok(deleted >= before, `deleted ${deleted}`);
      assert.equal(onDisk('dora@localhost').length, 0);
      assert.equal(onDisk('alice@localhost').length, 0);
    });

    it('deletes the account\'s archive with the account', async () => {
      await send('carol@localhost', 'erin@localhost', 'before deletion');
      assert.equal(onDisk('erin@localhost').length, 1);
      await ts.server.users.delete('erin@localhost');
      assert.equal(onDisk('erin@localhost').length, 0);
    });
  });

  describe('with archive_expires_after: never', () => {
    it('keeps everything and runs no expiry', async () => {
      const ts = await startTestServer({ config: { modules_enabled: ['mam'], mam: { archive_expires_after: 'never' } }, users: USERS.slice(0, 2) });
      try {
        const api = ts.server.modules.apiOf('localhost', 'mam')!;
        await api.send(xml('message', { from: 'alice@localhost', to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'forever')));
        const mam = api.depends('mam') as MamService;
        assert.equal(await mam.cleanup(new Date(Date.now() + 3650 * 86400_000)), 0);
        assert.equal(await api.openArchive('archive').count('bob@localhost'), 1);
      } finally {
        await ts.stop();
      }
    });
  });

  it('is not loaded when modules_enabled leaves it out: nothing archived, no features', async () => {
    const ts = await startTestServer({ config: { modules_enabled: [] }, users: USERS.slice(0, 2) });
    try {
      assert.equal(ts.server.modules.apiOf('localhost', 'mam'), undefined);
      const message = ts.server.modules.apiOf('localhost', 'message')!;
      await message.send(xml('message', { from: 'alice@localhost', to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'x')));
      assert.equal(await message.openArchive('archive').count('bob@localhost'), 0);
    } finally {
      await ts.stop();
    }
  });
});
