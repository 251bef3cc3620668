#!/usr/bin/python3
"""A slixmpp client (Debian's python3-slixmpp) with stream management (xep_0198), for spec/e2e/dead-link.spec.ts.

Connects to 127.0.0.1:--port (the test's relay), enables stream management with resumption and goes online. When
its connection is lost it connects again to the same address, where xep_0198 resumes the session. Prints one JSON
object per line: {"event": "ready"}, {"event": "sm_enabled"}, {"event": "disconnected"}, {"event": "resumed"},
{"event": "message", "body": ...} for each chat message; exits 0 after --timeout seconds.
"""

import argparse
import asyncio

import slixmpp

from slixmpp_common import emit


class Phone(slixmpp.ClientXMPP):
    def __init__(self, jid, password, address):
        super().__init__(jid, password)
        self.address = address
        self.stopping = False
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("session_resumed", lambda _e: emit(event="resumed"))
        self.add_event_handler("sm_enabled", lambda _e: emit(event="sm_enabled"))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("disconnected", self.on_disconnected)

    async def on_start(self, _event):
        self.send_presence()
        emit(event="ready", jid=str(self.boundjid))

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            emit(event="message", body=msg["body"])

    def on_disconnected(self, _event):
        emit(event="disconnected")
        if not self.stopping:
            self.connect(address=self.address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()

    xmpp = Phone(args.jid, args.password, ("127.0.0.1", args.port))
    xmpp.ca_certs = args.ca
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0198")
    xmpp.plugin["xep_0198"].allow_resume = True
    xmpp.connect(address=xmpp.address)
    loop = asyncio.get_event_loop()
    loop.run_until_complete(asyncio.sleep(args.timeout))
    xmpp.stopping = True


if __name__ == "__main__":
    main()
