#!/usr/bin/python3
"""Receive one message with slixmpp (Debian's python3-slixmpp), for spec/e2e/debian-clients.spec.ts.

Prints one JSON object per line on stdout: {"event": "ready", "jid": ...} once the session is up (after
initial presence), {"event": "message", "from": ..., "body": ..., "mechanism": ...} for the first message, then exits 0.
Exits 2 on authentication failure, 3 on timeout.
"""

import argparse
import asyncio
import json
import sys

import slixmpp


def emit(**fields):
    print(json.dumps(fields), flush=True)


class Receiver(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed_auth)

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        mech = getattr(self.plugin["feature_mechanisms"], "mech", None)
        emit(event="ready", jid=str(self.boundjid), mechanism=getattr(mech, "name", None))

    def on_message(self, msg):
        if msg["type"] not in ("chat", "normal"):
            return
        emit(event="message", **{"from": str(msg["from"]), "body": msg["body"]})
        self.disconnect()

    def on_failed_auth(self, _event):
        emit(event="failed_auth")
        sys.exit(2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="PEM file of the test certificate to trust")
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()

    xmpp = Receiver(args.jid, args.password)
    xmpp.ca_certs = args.ca
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0199")
    xmpp.connect(address=("127.0.0.1", args.port))

    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, args.timeout))
    except asyncio.TimeoutError:
        emit(event="timeout")
        sys.exit(3)


if __name__ == "__main__":
    main()
