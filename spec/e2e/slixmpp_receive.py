#!/usr/bin/python3
"""Receive one message with slixmpp (Debian's python3-slixmpp), for spec/e2e/debian-clients.spec.ts.

Prints one JSON object per line on stdout: {"event": "ready", "jid": ...} once the session is up (after
initial presence), {"event": "message", "from": ..., "body": ..., "mechanism": ...} for the first message, then exits 0.
Exits 2 on authentication failure, 3 on timeout.
"""

import slixmpp

from slixmpp_common import client_arguments, emit, exit_failed_auth, run_client


class Receiver(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", exit_failed_auth)

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



def main():
    parser = client_arguments(timeout=20)
    args = parser.parse_args()
    run_client(Receiver(args.jid, args.password), args, ["xep_0030", "xep_0199"])


if __name__ == "__main__":
    main()
