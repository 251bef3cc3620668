#!/usr/bin/python3
"""A phone-like slixmpp client (Debian's python3-slixmpp) for spec/e2e/carbons-csi.spec.ts: XEP-0280 carbons and
XEP-0352 client state indication through slixmpp's own plugins.

It enables carbons, sends initial presence, tells the server it is inactive, then prints one JSON object per line:
{"event": "ready", "jid": ..., "csi": bool} once inactive, {"event": "carbon_received"|"carbon_sent", ...} for each
carbon (with the forwarded message's from, to and body), {"event": "presence", "from": ..., "status": ...,
"delayed": bool} for presence from the account's other resources. Exits 0 after one carbon of each kind,
2 on authentication failure, 3 on timeout.
"""

import slixmpp

from slixmpp_common import client_arguments, emit, exit_failed_auth, run_client


class Phone(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.seen = set()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("carbon_received", lambda msg: self.on_carbon("carbon_received", msg["carbon_received"]))
        self.add_event_handler("carbon_sent", lambda msg: self.on_carbon("carbon_sent", msg["carbon_sent"]))
        self.add_event_handler("presence_available", self.on_presence)
        self.add_event_handler("failed_auth", exit_failed_auth)

    async def on_start(self, _event):
        await self.plugin["xep_0280"].enable()
        self.send_presence()
        csi = self.plugin["xep_0352"]
        csi.send_inactive()
        emit(event="ready", jid=str(self.boundjid), csi=csi.enabled)

    def on_carbon(self, kind, inner):
        emit(event=kind, **{"from": str(inner["from"]), "to": str(inner["to"]), "body": inner["body"]})
        self.seen.add(kind)
        if self.seen == {"carbon_received", "carbon_sent"}:
            self.disconnect()

    def on_presence(self, pres):
        if pres["from"] == self.boundjid or pres["from"].bare != self.boundjid.bare:
            return
        delayed = pres.xml.find("{urn:xmpp:delay}delay") is not None
        emit(event="presence", **{"from": str(pres["from"]), "status": pres["status"], "delayed": delayed})



def main():
    parser = client_arguments(timeout=20)
    args = parser.parse_args()
    run_client(Phone(args.jid, args.password), args, ["xep_0030", "xep_0280", "xep_0352"])


if __name__ == "__main__":
    main()
