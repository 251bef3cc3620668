"""What the slixmpp scripts of spec/e2e share (Debian's python3-slixmpp): one JSON object per line on stdout, the
common arguments of a single client, and its run (exit 2 on authentication failure, 3 on timeout)."""

import argparse
import asyncio
import json
import sys


def emit(**fields):
    print(json.dumps(fields), flush=True)


def exit_failed_auth(_event):
    """A failed_auth handler: say it and exit 2."""
    emit(event="failed_auth")
    sys.exit(2)


def client_arguments(timeout):
    """--jid, --password, --port (127.0.0.1), --ca and --timeout (seconds, `timeout` unless given); add the script's own."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="PEM file of the test certificate to trust")
    parser.add_argument("--timeout", type=float, default=timeout)
    return parser


def run_client(xmpp, args, plugins):
    """Trust --ca, register the plugins, connect to 127.0.0.1:--port and wait until the client disconnects; after
    --timeout seconds say so and exit 3."""
    xmpp.ca_certs = args.ca
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    xmpp.connect(address=("127.0.0.1", args.port))
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, args.timeout))
    except asyncio.TimeoutError:
        emit(event="timeout")
        sys.exit(3)
