// Presence subscriptions across two instances of xmppd (RFC 6121 §3 over s2s): alice@a.test and bob@b.test
// subscribe to each other, each approves, both rosters end at subscription "both" and each sees the other online,
// and an unavailable presence crosses too.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/server.js';
import { startTestDns, type TestDns } from '../helpers/dns.js';
import { federatedServer, login } from '../helpers/s2s.js';
import type { RawClient } from '../host/c2s/helpers.js';

describe('presence subscriptions between two xmppd instances', () => {
  let dns: TestDns;
  let a: TestServer;
  let b: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    dns = await startTestDns();
    a = await federatedServer('a.test', dns);
    b = await federatedServer('b.test', dns);
  });

  after(async () => {
    for (const c of clients) c.close();
    await a?.stop();
    await b?.stop();
    await dns?.close();
  });

  it('subscribe, approve both ways, then each sees the other online and offline', async () => {
    const alice = await login(a.c2sPort, 'a.test', 'alice', 'alice-pw');
    const bob = await login(b.c2sPort, 'b.test', 'bob', 'bob-pw');
    clients.push(alice, bob);
    // Interested resources (RFC 6121 §2.1.6): roster pushes go to those that asked for the roster.
    for (const c of [alice, bob]) {
      c.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
      await c.waitFor(/<iq[^>]*id=["']r0["'][\s\S]*?(?:\/>|<\/iq>)/, 'the roster');
    }

    alice.send("<presence to='bob@b.test' type='subscribe'/>");
    await bob.waitFor(/<presence[^>]*from=["']alice@a\.test["'][^>]*type=["']subscribe["']|<presence[^>]*type=["']subscribe["'][^>]*from=["']alice@a\.test["']/, 'bob gets the request');
    bob.send("<presence to='alice@a.test' type='subscribed'/>");
    // Approved: alice's roster says "to", and bob's available presence follows (RFC 6121 §3.1.6).
    await alice.waitFor(/<item[^>]*jid=["']bob@b\.test["'][^>]*subscription=["']to["']|<item[^>]*subscription=["']to["'][^>]*jid=["']bob@b\.test["']/, 'alice\'s roster push: to');
    await alice.waitFor(/<presence(?![^>]*type=)[^>]*from=["']bob@b\.test\/r["']/, 'alice sees bob online');

    bob.send("<presence to='alice@a.test' type='subscribe'/>");
    await alice.waitFor(/<presence[^>]*type=["']subscribe["'][^>]*>|<presence[^>]*from=["']bob@b\.test["'][^>]*type=["']subscribe["']/, 'alice gets bob\'s request');
    alice.send("<presence to='bob@b.test' type='subscribed'/>");
    await bob.waitFor(/<item[^>]*subscription=["']both["']/, 'bob\'s roster push: both');
    await bob.waitFor(/<presence(?![^>]*type=)[^>]*from=["']alice@a\.test\/r["']/, 'bob sees alice online');

    // Both rosters say both, as the servers store them.
    alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    const roster = await alice.waitFor(/<iq[^>]*id=["']r1["'][\s\S]*?<\/iq>/, 'alice\'s roster');
    assert.match(roster[0], /jid=["']bob@b\.test["'][^>]*subscription=["']both["']|subscription=["']both["'][^>]*jid=["']bob@b\.test["']/);

    bob.send("<presence type='unavailable'/>");
    await alice.waitFor(/<presence[^>]*type=["']unavailable["'][^>]*from=["']bob@b\.test\/r["']|<presence[^>]*from=["']bob@b\.test\/r["'][^>]*type=["']unavailable["']/, 'alice sees bob go offline');
  });
});
