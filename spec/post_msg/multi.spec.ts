// post_msg.md §13 with rooms (§10) and remote recipients (§9) among several recipients, on mock muc and s2s services:
// every recipient checked before anything is sent, the answer in request order, a failure while sending naming what was sent.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { StanzaError, type Stanza } from '../../lib/host/api.js';
import type { MucCheckResult, MucPostInput, MucService } from '../../lib/host/modules/muc/index.js';
import { load } from '../../lib/post_msg/index.js';
import { fakeModule, type FakeModule } from './helpers/fake-module.js';
import { basic, request, type SpecResponse } from './helpers/http.js';

const USERS: Array<[string, string]> = [['bob@localhost', 'secret'], ['alice@localhost', 'pw']];

/** A muc service with an open room (ops), a members-only one bob is not in (staff), and a nick taken in (busy). */
function mockRooms(): MucService & { checks: string[]; posts: MucPostInput[]; refuseOnPost: Set<string> } {
  const checks: string[] = [];
  const posts: MucPostInput[] = [];
  const refuseOnPost = new Set<string>();
  const check = (input: Pick<MucPostInput, 'room' | 'account' | 'nick'>): MucCheckResult => {
    checks.push(input.room);
    if (input.room === 'staff@rooms.localhost' || refuseOnPost.has(input.room)) {
      return { outcome: 'forbidden', rule: 'members-only', detail: `The room ${input.room} refused the post (members-only): members only.` };
    }
    if (input.room === 'busy@rooms.localhost') return { outcome: 'conflict', detail: `The nick bob is in use by another account in ${input.room}.` };
    if (input.room !== 'ops@rooms.localhost') return { outcome: 'not-found', detail: `There is no room ${input.room} on this server.` };
    return { outcome: 'allowed', nick: input.nick ?? 'bob' };
  };
  return {
    checks,
    posts,
    refuseOnPost,
    hasRoom: (room) => room === 'ops@rooms.localhost',
    check,
    async post(input) {
      const checked = check(input);
      if (checked.outcome !== 'allowed') return checked;
      posts.push(input);
      return { outcome: 'posted', nick: checked.nick };
    },
  };
}

async function harness(federated: boolean): Promise<{ fake: FakeModule; rooms: ReturnType<typeof mockRooms>; url: string; close: () => Promise<void> }> {
  const rooms = mockRooms();
  const fake = fakeModule({
    options: { rate_burst: 1000, rate_per_second: 1000 },
    users: USERS,
    components: ['rooms.localhost'],
    services: federated ? { s2s: { withdrawOnAbort: () => undefined } } : {},
    servicesAt: { 'rooms.localhost': { muc: rooms } },
  });
  load(fake.api);
  const server: Server = fake.app().listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  return { fake, rooms, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/msg`, close: () => new Promise((r) => server.close(() => r())) };
}

/** Answer each send by its recipient's domain: a remote domain "down.example" cannot be reached. */
function sendByDomain(fake: FakeModule): () => void {
  const sent = fake.sent;
  const push = sent.push.bind(sent);
  sent.push = (...items: Stanza[]) => {
    const to = items[0]!.attrs.to as string;
    fake.setSendResult(to.endsWith('@down.example') ? new StanzaError('remote-server-not-found', 'down.example: connection refused') : to.endsWith('.example') ? 'sent' : 'delivered');
    return push(...items);
  };
  return () => {
    sent.push = push;
    fake.setSendResult('delivered');
  };
}

describe('post_msg several recipients with rooms and remote servers (§13)', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  let restore: () => void;
  const post = (body: unknown, query = ''): Promise<SpecResponse> =>
    request(`${h.url}${query}`, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  before(async () => {
    h = await harness(true);
    restore = sendByDomain(h.fake);
  });
  after(async () => {
    restore();
    await h.close();
  });

  it('a local account, a room and a remote address: 201 {"messages"} in request order, each its outcome', async () => {
    const n = h.fake.sent.length;
    const posts = h.rooms.posts.length;
    const res = await post({ to: ['alice', 'ops@rooms.localhost', 'carol@up.example'], body: 'hello all', nick: 'Bobby' });
    assert.equal(res.status, 201, res.text);
    const { messages } = res.json() as { messages: Array<{ id: string; to: string; outcome: string }> };
    assert.deepEqual(messages.map((m) => [m.to, m.outcome]), [['alice@localhost', 'delivered'], ['ops@rooms.localhost', 'posted'], ['carol@up.example', 'sent']]);
    assert.equal(new Set(messages.map((m) => m.id)).size, 3);
    assert.deepEqual(h.fake.sent.slice(n).map((s) => s.attrs.to), ['alice@localhost', 'carol@up.example']);
    const posted = h.rooms.posts.slice(posts);
    assert.equal(posted.length, 1);
    assert.deepEqual({ room: posted[0]!.room, account: posted[0]!.account, nick: posted[0]!.nick, body: posted[0]!.body, id: posted[0]!.id }, { room: 'ops@rooms.localhost', account: 'bob@localhost', nick: 'Bobby', body: 'hello all', id: messages[1]!.id });
  });

  it('a forbidden room among them: 403 naming it, nothing sent or posted to any', async () => {
    const n = h.fake.sent.length;
    const posts = h.rooms.posts.length;
    const res = await post({ to: ['alice', 'ops@rooms.localhost', 'carol@up.example', 'staff@rooms.localhost'], body: 'x' });
    assert.equal(res.status, 403, res.text);
    assert.match(res.json().detail as string, /staff@rooms\.localhost/);
    assert.equal(h.fake.sent.length, n, 'nothing sent');
    assert.equal(h.rooms.posts.length, posts, 'nothing posted');
  });

  it('an unknown room 404, a nick held by another 409, each naming the room; nothing sent', async () => {
    const n = h.fake.sent.length;
    const unknown = await post({ to: ['alice', 'nowhere@rooms.localhost'], body: 'x' });
    assert.equal(unknown.status, 404, unknown.text);
    assert.match(unknown.json().detail as string, /nowhere@rooms\.localhost/);
    const taken = await post({ to: ['alice', 'busy@rooms.localhost'], body: 'x' });
    assert.equal(taken.status, 409, taken.text);
    assert.match(taken.json().detail as string, /busy@rooms\.localhost/);
    assert.equal(h.fake.sent.length, n);
  });

  it('a remote server that cannot be reached while sending: 502 listing the recipients already sent to, the rest not sent', async () => {
    const n = h.fake.sent.length;
    const posts = h.rooms.posts.length;
    const res = await post({ to: ['alice', 'carol@down.example', 'ops@rooms.localhost'], body: 'x' });
    assert.equal(res.status, 502, res.text);
    const detail = res.json().detail as string;
    assert.match(detail, /down\.example/);
    assert.match(detail, /Already sent: alice@localhost \(/);
    assert.ok(!detail.includes('ops@rooms'), detail);
    assert.equal(h.rooms.posts.length, posts, 'the room after it was not posted to');
    assert.deepEqual(h.fake.sent.slice(n).map((s) => s.attrs.to), ['alice@localhost', 'carol@down.example']);
  });

  it('a room that refuses when posting (changed since the check): its 403 listing what was sent', async () => {
    let checks = 0;
    const original = h.rooms.check;
    // Allowed at the check before sending, refused at the post.
    h.rooms.check = (input) => (++checks === 1 ? { outcome: 'allowed', nick: 'bob' } : original(input));
    h.rooms.refuseOnPost.add('ops@rooms.localhost');
    try {
      const res = await post({ to: ['alice', 'ops@rooms.localhost'], body: 'x' });
      assert.equal(res.status, 403, res.text);
      assert.match(res.json().detail as string, /Already sent: alice@localhost/);
    } finally {
      h.rooms.check = original;
      h.rooms.refuseOnPost.clear();
    }
  });

  it('dry run: 200 with each stanza, the room checked but nothing posted or sent', async () => {
    const n = h.fake.sent.length;
    const posts = h.rooms.posts.length;
    const res = await post({ to: ['alice', 'ops@rooms.localhost', 'carol@up.example'], body: 'x' }, '?dry_run=1');
    assert.equal(res.status, 200, res.text);
    const { messages } = res.json() as { messages: Array<{ to: string; stanza: string }> };
    assert.deepEqual(messages.map((m) => m.to), ['alice@localhost', 'ops@rooms.localhost', 'carol@up.example']);
    assert.match(messages[1]!.stanza, /type="groupchat"/);
    assert.equal(h.fake.sent.length, n);
    assert.equal(h.rooms.posts.length, posts);
    const forbidden = await post({ to: ['alice', 'staff@rooms.localhost'], body: 'x' }, '?dry_run=1');
    assert.equal(forbidden.status, 403, 'a dry run runs the room check');
  });
});

describe('post_msg several recipients with federation off (§9, §13)', () => {
  it('a remote address among them: 422 saying federation is off, nothing sent', async () => {
    const h = await harness(false);
    try {
      const res = await request(h.url, { headers: { Authorization: basic('bob', 'secret'), 'Content-Type': 'application/json' }, body: JSON.stringify({ to: ['alice', 'carol@up.example'], body: 'x' }) });
      assert.equal(res.status, 422, res.text);
      assert.match(res.json().detail as string, /carol@up\.example|up\.example/);
      assert.match(res.json().detail as string, /federation|s2s/i);
      assert.equal(h.fake.sent.length, 0);
    } finally {
      await h.close();
    }
  });
});
