"""Interop: Python's `websockets` client (compression on by default) against EchoServer.

Usage: python3 echo_interop.py PORT. Prints one line per check and a closing
'N passed, N failed' line; exits non-zero on any failure.
"""
import asyncio
import os
import sys

import websockets

PORT = int(sys.argv[1])
URL = f"ws://127.0.0.1:{PORT}/"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


async def main():
    async with websockets.connect(URL, max_size=None, open_timeout=5, close_timeout=5) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        check("permessage-deflate negotiated", extensions.startswith("permessage-deflate"), extensions)

        await ws.send("hello")
        check("short text echoes", await asyncio.wait_for(ws.recv(), 5) == "hello")

        text = "compressible " * 5000
        await ws.send(text)
        check("large compressed text echoes", await asyncio.wait_for(ws.recv(), 5) == text)

        blob = os.urandom(200_000)
        await ws.send(blob)
        check("random binary echoes", await asyncio.wait_for(ws.recv(), 5) == blob)

        parts = ["fragment one, ", "fragment two, ", "κόσμε ", "end"]
        await ws.send(parts)
        check("fragmented text echoes whole", await asyncio.wait_for(ws.recv(), 5) == "".join(parts))

        binary_parts = [b"\x00" * 1000, b"\xff" * 1000, os.urandom(1000)]
        await ws.send(binary_parts)
        check("fragmented binary echoes whole", await asyncio.wait_for(ws.recv(), 5) == b"".join(binary_parts))

        for index in range(50):
            await ws.send(f"context takeover message {index} " * 20)
        ok = True
        for index in range(50):
            ok = ok and await asyncio.wait_for(ws.recv(), 5) == f"context takeover message {index} " * 20
        check("50 messages with client context takeover", ok)

        pong = await ws.ping(b"interop")
        await asyncio.wait_for(pong, 5)
        check("ping answered", True)

    check("clean close 1000", ws.close_code == 1000, str(ws.close_code))

    async with websockets.connect(URL, compression=None, open_timeout=5) as plain:
        check("no extension when none offered", plain.response.headers.get("Sec-WebSocket-Extensions") is None)
        await plain.send("plain")
        check("uncompressed echo", await asyncio.wait_for(plain.recv(), 5) == "plain")


asyncio.run(main())
failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
