#!/usr/bin/python3
"""PEP and bookmarks with slixmpp's plugins (Debian's python3-slixmpp), for spec/e2e/pep.spec.ts.

--role listener: announces XEP-0118 tune +notify through XEP-0115 caps (xep_0163 registers it), prints
{"event": "ready"}, then {"event": "tune", "from": ..., "title": ...} for the first tune notification, and exits 0.
--role publisher: stores XEP-0048 bookmarks with xep_0048 (private XML, then the legacy PEP node through xep_0223),
reads each back, prints {"event": "bookmarks", "method": ..., "jids": [...]}, publishes a tune, prints
{"event": "done"} and exits 0. Exits 2 on authentication failure, 3 on timeout, 4 on an error answer.
"""

import asyncio
import sys

import slixmpp
from slixmpp.plugins.xep_0048 import Bookmarks

from slixmpp_common import client_arguments, emit, exit_failed_auth, run_client


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, role, title):
        super().__init__(jid, password)
        self.role = role
        self.title = title
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", exit_failed_auth)
        self.add_event_handler("user_tune_publish", self.on_tune)

    async def on_start(self, _event):
        try:
            if self.role == "listener":
                await self.plugin["xep_0115"].update_caps()
                self.send_presence()
                await asyncio.sleep(1)
                emit(event="ready")
                return
            for method in ("xep_0049", "xep_0223"):
                bookmarks = Bookmarks()
                bookmarks.add_conference(f"{method.replace('_', '')}@conference.localhost", "slix", name=method, autojoin=True)
                await self.plugin["xep_0048"].set_bookmarks(bookmarks, method=method)
                result = await self.plugin["xep_0048"].get_bookmarks(method=method)
                if method == "xep_0049":
                    storage = result["private"]["bookmarks"]
                else:
                    storage = result["pubsub"]["items"]["substanzas"][0]["payload"]
                    storage = Bookmarks(storage)
                jids = [str(c["jid"]) for c in storage["conferences"]]
                emit(event="bookmarks", method=method, jids=jids)
            await self.plugin["xep_0118"].publish_tune(title=self.title)
            emit(event="done")
            self.disconnect()
        except slixmpp.exceptions.IqError as err:
            emit(event="error", condition=err.condition, text=err.text)
            self.disconnect()
            sys.exit(4)
        except Exception as err:  # anything else: say it and stop now rather than time out
            emit(event="error", condition="client", text=repr(err))
            self.disconnect()
            sys.exit(4)

    def on_tune(self, msg):
        if self.role != "listener":
            return
        tune = msg["pubsub_event"]["items"]["item"]["tune"]
        emit(event="tune", **{"from": str(msg["from"]), "title": tune["title"]})
        self.disconnect()



def main():
    parser = client_arguments(timeout=30)
    parser.add_argument("--role", choices=["listener", "publisher"], required=True)
    parser.add_argument("--title", default="Song")
    args = parser.parse_args()
    run_client(Client(args.jid, args.password, args.role, args.title), args, ["xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0118", "xep_0049", "xep_0223", "xep_0048"])


if __name__ == "__main__":
    main()
