#!/usr/bin/python3
"""Blocking Command (XEP-0191) with slixmpp's xep_0191 plugin (Debian's python3-slixmpp), for spec/e2e/blocklist.spec.ts.

The blocker blocks the other account; the other writes to it and must get an error back (§3.5) while the blocker gets
nothing; the spec then POSTs through post_msg as the blocked account. The blocker unblocks; the next message arrives.
Prints one JSON object per line. Between phases it prints {"event": "wait", "phase": ...} and reads one line from stdin
before going on, so the spec can make its HTTP requests at the right moment. Every message the blocker receives is
printed as {"event": "received", "from": ..., "body": ...}. Exits 0 when done, 3 on timeout.
"""

import argparse
import asyncio
import sys

import slixmpp

from slixmpp_common import emit


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ready = asyncio.Event()
        self.messages = asyncio.Queue()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        self.ready.set()

    def on_message(self, msg):
        self.messages.put_nowait(msg)


async def read_line():
    return await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)


async def wait_for(phase):
    emit(event="wait", phase=phase)
    await read_line()


async def next_message(peer, seconds):
    try:
        return await asyncio.wait_for(peer.messages.get(), seconds)
    except asyncio.TimeoutError:
        return None


def report(msg):
    error = msg["error"]
    emit(event="received", to=msg["to"].bare, type=msg["type"], **{"from": str(msg["from"])}, body=msg["body"],
         condition=error["condition"] if msg["type"] == "error" else None)


async def scenario(blocker, other, quiet):
    await blocker.ready.wait()
    await other.ready.wait()
    emit(event="online")

    await blocker.plugin["xep_0191"].block([other.boundjid.bare])
    blocked = await blocker.plugin["xep_0191"].get_blocked()
    emit(event="blocked", items=sorted(str(j) for j in blocked["blocklist"]["items"]))

    other.send_message(mto=blocker.boundjid.bare, mbody="while blocked", mtype="chat")
    answer = await next_message(other, 10)
    if answer is not None:
        report(answer)
    # Nothing may reach the blocker: give the server time to (wrongly) deliver it.
    got = await next_message(blocker, quiet)
    if got is not None:
        report(got)

    await wait_for("blocked")

    got = await next_message(blocker, quiet)
    if got is not None:
        report(got)
    await blocker.plugin["xep_0191"].unblock([other.boundjid.bare])
    blocked = await blocker.plugin["xep_0191"].get_blocked()
    emit(event="unblocked", items=sorted(str(j) for j in blocked["blocklist"]["items"]))

    other.send_message(mto=blocker.boundjid.bare, mbody="after unblock", mtype="chat")
    got = await next_message(blocker, 10)
    if got is not None:
        report(got)

    await wait_for("unblocked")
    got = await next_message(blocker, 10)
    if got is not None:
        report(got)
    emit(event="done")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocker", required=True, help="jid:password")
    parser.add_argument("--other", required=True, help="jid:password")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="PEM file of the test certificate to trust")
    parser.add_argument("--quiet", type=float, default=1, help="seconds to wait for a message that must not come")
    parser.add_argument("--timeout", type=float, default=45)
    args = parser.parse_args()

    blocker = Peer(*args.blocker.split(":", 1))
    other = Peer(*args.other.split(":", 1))
    for peer in (blocker, other):
        peer.ca_certs = args.ca
        peer.register_plugin("xep_0030")
        peer.register_plugin("xep_0191")
        peer.connect(address=("127.0.0.1", args.port))

    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(scenario(blocker, other, args.quiet), args.timeout))
    except asyncio.TimeoutError:
        emit(event="timeout")
        sys.exit(3)
    for peer in (blocker, other):
        peer.disconnect()
    loop.run_until_complete(asyncio.wait_for(asyncio.gather(blocker.disconnected, other.disconnected), 5))


if __name__ == "__main__":
    main()
