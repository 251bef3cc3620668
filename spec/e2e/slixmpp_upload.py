#!/usr/bin/python3
"""Share a file with slixmpp's XEP-0363 plugin (Debian's python3-slixmpp and python3-aiohttp), for
spec/e2e/file-share.spec.ts.

Logs in, finds the upload service (disco#items of the server, then disco#info), uploads --size bytes
as --name, downloads the GET URL and checks the bytes, then tries a file one byte over the announced limit.
Prints one JSON object per line on stdout: {"event": "uploaded", "url", "max_file_size", "service"},
{"event": "downloaded", "same": bool, "content_type", "disposition", "nosniff"}, {"event": "too_big", "limit"},
then {"event": "done"} and exits 0. Exits 2 on authentication failure, 3 on timeout, 4 on an error.

The upload URLs name the component's domain (upload.localhost), which this machine may not resolve: the HTTP
client's resolver maps it to 127.0.0.1, as DNS would for a real deployment.
"""

import io
import os
import socket
import sys

import aiohttp
import aiohttp.connector
import slixmpp
from slixmpp.plugins.xep_0363.http_upload import FileTooBig

from slixmpp_common import client_arguments, emit, exit_failed_auth, run_client


class LoopbackResolver(aiohttp.resolver.ThreadedResolver):
    """Names under the test domain resolve to this machine."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if host == "localhost" or host.endswith(".localhost"):
            return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]
        return await super().resolve(host, port, family)


aiohttp.connector.DefaultResolver = LoopbackResolver


class Uploader(slixmpp.ClientXMPP):
    def __init__(self, jid, password, name, size, content_type):
        super().__init__(jid, password)
        self.name = name
        self.size = size
        self.content_type = content_type
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", exit_failed_auth)

    async def on_start(self, _event):
        try:
            data = os.urandom(self.size)
            upload = self.plugin["xep_0363"]
            await self.discover(upload)
            url = await upload.upload_file(self.name, size=self.size, content_type=self.content_type,
                                           input_file=io.BytesIO(data), domain=self.boundjid.domain, timeout=20)
            emit(event="uploaded", url=url, max_file_size=upload.max_file_size, service=str(upload.upload_service))
            async with aiohttp.ClientSession() as session:
                async with session.get(url) as response:
                    body = await response.read()
                    emit(event="downloaded", status=response.status, same=body == data,
                         content_type=response.headers.get("Content-Type"),
                         disposition=response.headers.get("Content-Disposition"),
                         nosniff=response.headers.get("X-Content-Type-Options") == "nosniff")
            try:
                too_big = int(upload.max_file_size) + 1
                await upload.upload_file("big.bin", size=too_big, input_file=io.BytesIO(b""), domain=self.boundjid.domain, timeout=20)
                emit(event="error", condition="client", text="a file over the limit was accepted")
            except FileTooBig as err:
                emit(event="too_big", limit=int(upload.max_file_size), text=str(err))
        except Exception as err:  # say what failed and stop now rather than time out
            emit(event="error", condition=getattr(err, "condition", "client"), text=repr(err))
            self.disconnect()
            sys.exit(4)
        emit(event="done")
        self.disconnect()

    async def discover(self, upload):
        """The plugin's own discovery (find_upload_service), step by step: in Debian's slixmpp 1.8.3 it hands
        coroutines to asyncio.wait, which Python 3.11 refuses. disco#items of the server, disco#info of each item,
        the one with a store/file identity and the feature, its max-file-size from the XEP-0128 form."""
        disco = self.plugin["xep_0030"]
        items = await disco.get_items(jid=self.boundjid.domain, timeout=10)
        for item in items["disco_items"]["items"]:
            info = await disco.get_info(jid=item[0], timeout=10)
            identities = info["disco_info"]["identities"]
            features = info["disco_info"]["features"]
            if not any(i[0] == "store" and i[1] == "file" for i in identities) or "urn:xmpp:http:upload:0" not in features:
                continue
            upload.upload_service = info["from"]
            for form in info["disco_info"].iterables:
                values = form["values"]
                if values["FORM_TYPE"] == ["urn:xmpp:http:upload:0"]:
                    upload.max_file_size = int(values["max-file-size"])
            return
        raise RuntimeError("no upload service in disco#items of " + self.boundjid.domain)



def main():
    parser = client_arguments(timeout=40)
    parser.add_argument("--name", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--type", dest="content_type", required=True)
    args = parser.parse_args()
    run_client(Uploader(args.jid, args.password, args.name, args.size, args.content_type), args, ["xep_0030", "xep_0363"])


if __name__ == "__main__":
    main()
