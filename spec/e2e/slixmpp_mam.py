#!/usr/bin/python3
"""Fetch the message archive with slixmpp's XEP-0313 plugin (Debian's python3-slixmpp), for spec/e2e/mam.spec.ts.

Logs in, reads the query form, pages through the whole archive forward and backward with XEP-0059 (pages of --max),
then only the messages with --with; sends no presence. Prints one JSON object per line on stdout:
{"event": "fields", "vars": [...]}, {"event": "forward"|"backward"|"with", "bodies": [...], "ids": [...]}, then
{"event": "done"} and exits 0. Exits 2 on authentication failure, 3 on timeout, 4 on an error answer.
"""

import sys

import slixmpp
from slixmpp.exceptions import IqError

from slixmpp_common import client_arguments, emit, exit_failed_auth, run_client


class Fetcher(slixmpp.ClientXMPP):
    def __init__(self, jid, password, page, with_jid):
        super().__init__(jid, password)
        self.page = page
        self.with_jid = with_jid
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", exit_failed_auth)

    async def collect(self, **query):
        bodies, ids = [], []
        async for message in self.plugin["xep_0313"].iterate(rsm={"max": self.page}, **query):
            forwarded = message["mam_result"]["forwarded"]
            bodies.append(forwarded["stanza"]["body"])
            ids.append(message["mam_result"]["id"])
        return bodies, ids

    async def on_start(self, _event):
        try:
            form = await self.plugin["xep_0313"].get_fields()
            fields = form["fields"]
            names = list(fields.keys()) if hasattr(fields, "keys") else [field["var"] for field in fields]
            emit(event="fields", vars=names)
            bodies, ids = await self.collect()
            emit(event="forward", bodies=bodies, ids=ids)
            bodies, ids = await self.collect(reverse=True)
            emit(event="backward", bodies=bodies, ids=ids)
            bodies, ids = await self.collect(with_jid=slixmpp.JID(self.with_jid))
            emit(event="with", bodies=bodies, ids=ids)
        except IqError as err:
            emit(event="error", condition=err.condition, text=err.text)
            self.disconnect()
            sys.exit(4)
        except Exception as err:  # anything else: say it and stop now rather than time out
            emit(event="error", condition="client", text=repr(err))
            self.disconnect()
            sys.exit(4)
        emit(event="done")
        self.disconnect()



def main():
    parser = client_arguments(timeout=30)
    parser.add_argument("--max", type=int, default=10, help="page size (RSM max)")
    parser.add_argument("--with", dest="with_jid", required=True, help="the JID for the filtered query")
    args = parser.parse_args()
    run_client(Fetcher(args.jid, args.password, args.max, args.with_jid), args, ["xep_0030", "xep_0059", "xep_0313"])


if __name__ == "__main__":
    main()
