#!/usr/bin/python3
"""Two slixmpp clients (Debian's python3-slixmpp) subscribe to each other, for spec/e2e/subscriptions.spec.ts.

The first asks the second for a subscription once both are online; slixmpp's defaults approve a request and ask back
(auto_authorize, auto_subscribe). Prints one JSON object per line: {"event": "ready", "jid": ...} per client,
{"event": "online", "jid": ..., "sees": ...} when a client gets the other's available presence,
{"event": "done", "rosters": {...}} once both see each other online with subscription both, then exits 0.
Exits 3 on timeout.
"""

import argparse
import asyncio
import sys

import slixmpp

from slixmpp_common import emit


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password, other):
        super().__init__(jid, password)
        self.other = other
        self.ready = asyncio.Event()
        self.sees_other = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("presence_available", self.on_available)

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        emit(event="ready", jid=str(self.boundjid))
        self.ready.set()

    def on_available(self, presence):
        if presence["from"].bare == self.other and not self.sees_other.is_set():
            emit(event="online", jid=self.boundjid.bare, sees=str(presence["from"]))
            self.sees_other.set()

    def subscription(self):
        return self.client_roster[self.other]["subscription"]


async def scenario(first, second):
    await first.ready.wait()
    await second.ready.wait()
    first.send_presence_subscription(pto=second.boundjid.bare)
    await first.sees_other.wait()
    await second.sees_other.wait()
    while first.subscription() != "both" or second.subscription() != "both":
        await asyncio.sleep(0.05)
    emit(event="done", rosters={first.boundjid.bare: first.subscription(), second.boundjid.bare: second.subscription()})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", required=True, help="jid:password")
    parser.add_argument("--second", required=True, help="jid:password")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="PEM file of the test certificate to trust")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()

    first_jid, first_pw = args.first.split(":", 1)
    second_jid, second_pw = args.second.split(":", 1)
    first = Peer(first_jid, first_pw, second_jid)
    second = Peer(second_jid, second_pw, first_jid)
    for peer in (first, second):
        peer.ca_certs = args.ca
        peer.register_plugin("xep_0030")
        peer.connect(address=("127.0.0.1", args.port))

    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(scenario(first, second), args.timeout))
    except asyncio.TimeoutError:
        emit(event="timeout", first=first.subscription(), second=second.subscription())
        sys.exit(3)
    for peer in (first, second):
        peer.disconnect()
    loop.run_until_complete(asyncio.wait_for(asyncio.gather(first.disconnected, second.disconnected), 5))


if __name__ == "__main__":
    main()
