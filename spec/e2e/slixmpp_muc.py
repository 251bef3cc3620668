#!/usr/bin/python3
"""Rooms with slixmpp's XEP-0045 plugin (Debian's python3-slixmpp), for spec/e2e/muc.spec.ts.

The owner creates ROOM (locked, status 201), configures it members-only and persistent through the muc#roomconfig
form, makes member@localhost a member; the member joins. Prints READY, then "<who> GOT <nick>: <body>" for each
groupchat message with a body that arrives live (not history), and exits 0 once both saw one from nick "member".
Exits 3 on timeout, 2 on a failed step.
"""

import argparse
import asyncio
import sys

import slixmpp
from slixmpp import JID


def say(text):
    print(text, flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, who, password, ca):
        super().__init__(f"{who}@localhost/slix", password)
        self.who = who
        self.ca_certs = ca
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0045")
        self.started = asyncio.get_event_loop().create_future()
        self.got = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("groupchat_message", self.on_groupchat)

    async def on_start(self, _event):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def on_groupchat(self, msg):
        if not msg["body"] or msg["delay"]["stamp"]:
            return
        say(f"{self.who} GOT {msg['mucnick']}: {msg['body']}")
        if msg["mucnick"] == "member" and not self.got.done():
            self.got.set_result(True)


async def run(port, room, ca):
    room = JID(room)
    owner = Client("owner", "owner-pw", ca)
    member = Client("member", "member-pw", ca)
    for c in (owner, member):
        c.connect(address=("127.0.0.1", port))
    await asyncio.gather(owner.started, member.started)

    muc = owner.plugin["xep_0045"]
    await muc.join_muc_wait(room, "owner", maxstanzas=0, timeout=10)
    form = owner.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/muc#roomconfig")
    form.add_field(var="muc#roomconfig_membersonly", ftype="boolean", value=True)
    form.add_field(var="muc#roomconfig_persistentroom", ftype="boolean", value=True)
    form.add_field(var="muc#roomconfig_roomname", ftype="text-single", value="Lab")
    await muc.set_room_config(room, form)
    await muc.set_affiliation(room, "member", jid=JID("member@localhost"))
    config = await muc.get_room_config(room)
    if config.get_values().get("muc#roomconfig_membersonly") not in (True, "1", "true"):
        say(f"FAILED the room is not members-only: {config}")
        sys.exit(2)

    await member.plugin["xep_0045"].join_muc_wait(room, "member", maxstanzas=0, timeout=10)
    say("READY")
    await asyncio.gather(owner.got, member.got)
    for c in (owner, member):
        c.disconnect()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("room")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(run(args.port, args.room, args.ca), args.timeout))
    except asyncio.TimeoutError:
        say("TIMEOUT")
        sys.exit(3)
    sys.exit(0)


if __name__ == "__main__":
    main()
