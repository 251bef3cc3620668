// post_msg.md §10 in the pure core (lib/post_msg/message.ts): which recipients are rooms, the type rules for them,
// the nick field. The posting itself (403/409/404/201, occupants, history, archive) is in spec/e2e/muc.spec.ts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildMessage, type MessageInput } from '../../lib/post_msg/message.js';

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

function input(contentType: string, body: string, over: Partial<MessageInput> = {}): MessageInput {
  return {
    contentType,
    body: Buffer.from(body, 'utf8'),
    pathRecipient: 'ops@conference.localhost',
    account: 'bob@localhost',
    host: 'localhost',
    id: 'id-1',
    isLocalHost: (d) => d === 'localhost',
    isRoomService: (d) => d === 'conference.localhost',
    ...over,
  };
}

describe('post_msg core: rooms (§10)', () => {
  it('defaults the type to groupchat for a room and keeps the nick field', () => {
    const r = buildMessage(input(JSON_TYPE, '{"body":"deploy done","nick":"ci"}'));
    assert.ok(r.ok);
    assert.equal(r.value.isRoom, true);
    assert.equal(r.value.type, 'groupchat');
    assert.equal(r.value.nick, 'ci');
    assert.equal(r.value.stanza.attrs.type, 'groupchat');
    assert.equal(r.value.to.bare, 'ops@conference.localhost');
  });

  it('accepts type groupchat for a room', () => {
    const r = buildMessage(input(FORM, 'type=groupchat&body=x'));
    assert.ok(r.ok);
    assert.equal(r.value.type, 'groupchat');
  });

  for (const type of ['chat', 'normal', 'headline']) {
    it(`answers 422 for type ${type} to a room`, () => {
      const r = buildMessage(input(FORM, `type=${type}&body=x`));
      assert.ok(!r.ok);
      assert.equal(r.problem.status, 422);
      assert.match(r.problem.detail, /only groupchat/);
    });
  }

  it('answers 422 for an occupant JID: post_msg posts to the room itself', () => {
    const r = buildMessage(input(FORM, 'body=x', { pathRecipient: 'ops@conference.localhost/alice' }));
    assert.ok(!r.ok);
    assert.equal(r.problem.status, 422);
  });

  it('answers 422 for groupchat to an account (not a room)', () => {
    const r = buildMessage(input(FORM, 'type=groupchat&body=x', { pathRecipient: 'alice' }));
    assert.ok(!r.ok);
    assert.equal(r.problem.status, 422);
    assert.match(r.problem.detail, /alice@localhost is not one/);
  });

  it('answers 422 for groupchat to a remote JID, a room of a remote service included', () => {
    for (const to of ['ops@conference.example.net', 'carol@example.net']) {
      const r = buildMessage(input(FORM, 'type=groupchat&body=x', { pathRecipient: to }));
      assert.ok(!r.ok);
      assert.equal(r.problem.status, 422, to);
    }
  });

  it('ignores the nick field for an account and keeps chat as the default type there', () => {
    const r = buildMessage(input(FORM, 'body=x&nick=ci', { pathRecipient: 'alice' }));
    assert.ok(r.ok);
    assert.equal(r.value.isRoom, false);
    assert.equal(r.value.type, 'chat');
    assert.equal(r.value.nick, undefined);
  });
});
