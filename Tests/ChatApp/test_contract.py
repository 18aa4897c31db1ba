"""ChatApp against ../shared/CHATAPP.md, over real sockets."""
import asyncio
import json
import re
import socket
import struct
import time
import urllib.error
import urllib.request

import pytest
import websockets

from conftest import PATIENCE

TIMEOUT = 5 * PATIENCE


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20 * PATIENCE))


async def connect(chat, token=None, origin=None, headers=None):
    url = chat.ws + (f"?token={token}" if token else "")
    return await websockets.connect(url, origin=origin, additional_headers=headers, open_timeout=TIMEOUT, max_size=None)


async def subscribe(ws, topic):
    await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": topic}}))


async def recv(ws):
    """The next message without its stream position (chat rooms keep a history, so their
    messages carry `offset` and `epoch`; test_history.py checks those)."""
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    message.pop("offset", None)
    message.pop("epoch", None)
    return message


async def recv_raw(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def settle(ws):
    """A round trip through the session: everything sent before it has been handled."""
    await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "admin:sync"}}))
    while True:
        message = await recv(ws)
        if message == {"topic": "error", "data": "not allowed"}:
            return


def status_of(chat, path="/ws", headers=None):
    request = urllib.request.Request(chat.http + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_page_has_the_stable_hooks(chat):
    status, body = status_of(chat, "/")
    assert status == 200
    for hook in ['id="name"', 'id="join"', 'id="message"', 'id="messages"', 'id="presence"', 'id="status"']:
        assert hook in body
    assert "http://" not in body and "https://" not in body, "nothing from other hosts"


def send_upgrade(chat, target):
    """A socket that has sent a WebSocket upgrade request for `target`."""
    sock = socket.create_connection(("127.0.0.1", chat.port), timeout=TIMEOUT)
    sock.sendall((f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def upgrade_answer(chat, target):
    """Status and body of a real upgrade request (urllib would rewrite its Connection header)."""
    with send_upgrade(chat, target) as sock:
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def test_auth_refusals_are_401_before_the_upgrade(chat):
    # A fixed reason: the application's error text (it can carry internals) is only logged.
    assert upgrade_answer(chat, "/ws") == (401, "unauthorized\n")
    assert upgrade_answer(chat, "/ws?token=" + "x" * 33) == (401, "unauthorized\n")
    assert upgrade_answer(chat, "/ws?token=bad%20name")[0] == 401
    # Not a WebSocket request at all: refused before any auth work, as in Go.
    assert status_of(chat, "/ws")[0] == 400

    async def bearer():
        ws = await connect(chat, headers={"Authorization": "Bearer bearer_user-1"})
        await ws.close()
    run(bearer())


def test_origins(chat):
    async def scenario():
        for origin in [chat.http, "https://allowed.example"]:
            ws = await connect(chat, "origins", origin=origin)
            await ws.close()
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(chat, "origins", origin="https://evil.example")
        assert refused.value.response.status_code == 403
    run(scenario())


def test_subscription_rules(chat):
    async def scenario():
        ws = await connect(chat, "rules")
        for topic in ["chat:general", "presence", "chat:room7", "user:rules"]:
            await subscribe(ws, topic)
        for topic in ["user:someone", "admin:x", "chat:", "random"]:
            await subscribe(ws, topic)
            assert await recv(ws) == {"topic": "error", "data": "not allowed"}
        # Exactly those four refusals: the next message is the chat, so none of the allowed
        # topics (user:<self> among them) was refused, and chat:general works.
        await ws.send('{"topic":"chat","data":"after"}')
        assert await recv(ws) == {"topic": "chat:general", "data": {"user": "rules", "data": "after"}}
        await ws.close()
    run(scenario())


def test_chat_data_travels_byte_for_byte_and_unsubscribe_stops_it(chat):
    async def scenario():
        alice, bob = await connect(chat, "alice"), await connect(chat, "bob")
        for ws in (alice, bob):
            await subscribe(ws, "chat:general")
            await settle(ws)
        data = '{"text": "hi <b>",  "n":[1, 2.50]}'
        await alice.send('{"topic":"chat","data":' + data + '}')
        # Byte for byte, then the message's place in the room's history.
        expected = re.compile(re.escape('{"topic":"chat:general","data":{"user":"alice","data":' + data + '}')
                              + r',"offset":\d+,"epoch":"[0-9a-f]{8}"\}')
        assert expected.fullmatch(await recv_raw(bob))
        assert expected.fullmatch(await recv_raw(alice))
        await bob.send(json.dumps({"topic": "unsubscribe", "data": {"topic": "chat:general"}}))
        await settle(bob)
        await alice.send('{"topic":"chat","data":"second"}')
        assert json.loads(await recv_raw(alice))["data"]["data"] == "second"
        await bob.send('{"topic":"chat","data":"from bob"}')
        assert json.loads(await recv_raw(alice))["data"] == {"user": "bob", "data": "from bob"}
        # Bob, unsubscribed, got neither: the next thing he reads is the answer to this.
        await subscribe(bob, "admin:after")
        assert await recv(bob) == {"topic": "error", "data": "not allowed"}
        await alice.close()
        await bob.close()
    run(scenario())


def test_chat_rooms_publish_as_chat_does_for_those_allowed(chat):
    async def scenario():
        ann, ben = await connect(chat, "ann"), await connect(chat, "ben")
        await subscribe(ben, "chat:room9")
        await settle(ben)
        await ann.send('{"topic":"chat:room9","data":{"text":"in nine"}}')
        assert await recv(ben) == {"topic": "chat:room9", "data": {"user": "ann", "data": {"text": "in nine"}}}
        for topic in ["chat:", "user:ann", "admin:x"]:
            await ann.send(json.dumps({"topic": topic, "data": 1}))
        # chat: (no room) is refused like a subscribe to it; topics outside chat: are ignored.
        assert await recv(ann) == {"topic": "error", "data": "not allowed"}
        await settle(ann)
        await ann.close()
        await ben.close()
    run(scenario())


def test_standard_commands_with_ids(chat):
    """MizuLive's command set (PROTOCOL.md, version 1) under the chat's rules."""
    async def scenario():
        ws = await websockets.connect(chat.ws + "?token=cmd", subprotocols=["mizu-live.v1"], open_timeout=TIMEOUT)
        assert ws.subprotocol == "mizu-live.v1"
        await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "chat:cmds", "history": 5, "id": 1}}))
        reply = await recv(ws)
        assert reply["topic"] == "reply" and reply["data"]["id"] == 1 and reply["data"]["result"]["topic"] == "chat:cmds"
        await ws.send(json.dumps({"topic": "publish", "data": {"topic": "chat:cmds", "data": {"text": "via publish"}, "id": 2}}))
        received = [await recv(ws), await recv(ws)]
        assert {"topic": "reply", "data": {"id": 2, "result": {"topic": "chat:cmds"}}} in received
        assert {"topic": "chat:cmds", "data": {"user": "cmd", "data": {"text": "via publish"}}} in received
        await ws.send(json.dumps({"topic": "history", "data": {"topic": "chat:cmds", "limit": 10, "id": "h"}}))
        page = (await recv(ws))["data"]
        assert page["id"] == "h" and [p["data"]["data"]["text"] for p in page["result"]["publications"]] == ["via publish"]
        await ws.send(json.dumps({"topic": "publish", "data": {"topic": "user:other", "data": 1, "id": 3}}))
        assert (await recv(ws))["data"] == {"id": 3, "error": {"code": "not_allowed", "message": "not allowed", "temporary": False}}
        await ws.send(json.dumps({"topic": "unsubscribe", "data": {"topic": "online", "id": 4}}))
        assert (await recv(ws))["data"]["error"]["code"] == "not_allowed", "being online is not the client's to drop"
        await ws.close()
    run(scenario())


def test_presence_join_and_leave(chat):
    async def scenario():
        watcher = await connect(chat, "watcher")
        await subscribe(watcher, "presence")
        await settle(watcher)
        guest = await connect(chat, "guest")
        assert await recv(watcher) == {"topic": "presence", "data": {"type": "join", "user": "guest"}}
        await guest.close()
        assert await recv(watcher) == {"topic": "presence", "data": {"type": "leave", "user": "guest"}}
        await watcher.close()
    run(scenario())


def test_announce_publishes_from_http(chat):
    async def scenario():
        ws = await connect(chat, "listener")
        await subscribe(ws, "chat:general")
        await settle(ws)
        request = urllib.request.Request(chat.http + "/api/announce", data=b'{"text": "maintenance at 5"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.status == 204
        assert await recv(ws) == {"topic": "chat:general", "data": {"user": "server", "data": {"text": "maintenance at 5"}}}
        await ws.close()
    run(scenario())
    request = urllib.request.Request(chat.http + "/api/announce", data=b'{"nope": 1}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request, timeout=TIMEOUT)
    assert bad.value.code == 400


def test_announcements_are_paced_per_client(chat):
    """Anyone may announce: a loop of POST /api/announce (6,800 a second, every real message
    pushed out of chat:general's history) gets 429 with Retry-After past its client's budget
    (10 at once, 2 a second)."""
    statuses = []
    started = time.time()
    for index in range(40):
        request = urllib.request.Request(chat.http + "/api/announce", data=json.dumps({"text": f"a{index}"}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            assert error.code == 429 and int(error.headers["Retry-After"]) >= 1
    elapsed = time.time() - started
    assert statuses[0] == 204 and 429 in statuses, statuses
    # At most the burst plus what refilled while the loop ran: a bound a slow machine only widens.
    assert statuses.count(204) <= 10 + 2 * elapsed + 1, (statuses, elapsed)


def test_bad_input(chat):
    async def scenario():
        ws = await connect(chat, "bad")
        for bad in ["not json", "[]", '{"data":1}', '{"topic":7}']:
            await ws.send(bad)
            assert await recv(ws) == {"topic": "error", "data": "bad message"}
        # Data already as deep as a message may nest: wrapped as a chat message it would be
        # deeper, so it is bad for good (not "not sent", which says try again later).
        deepest = "[" * 128 + "]" * 128
        await ws.send('{"topic":"chat","data":' + deepest + "}")
        assert await recv(ws) == {"topic": "error", "data": "bad message"}
        # A room no one could subscribe to (past the topic length) is not allowed either.
        await ws.send(json.dumps({"topic": "chat:" + "r" * 300, "data": 1}))
        assert await recv(ws) == {"topic": "error", "data": "not allowed"}
        await subscribe(ws, "chat:general")
        await settle(ws)  # the session survived
        await ws.send("x" * 70000)
        with pytest.raises(websockets.ConnectionClosed):
            await recv_raw(ws)
        assert ws.close_code == 1009
    run(scenario())


def presence_of(server):
    """Who is online, through GET /api/presence: budgeted per client (10, then 2 a second),
    so a polling test waits its turn when told to (429 with Retry-After)."""
    deadline = time.time() + 10 * PATIENCE
    while True:
        try:
            with urllib.request.urlopen(server.http + "/api/presence", timeout=TIMEOUT) as response:
                return json.loads(response.read())["users"]
        except urllib.error.HTTPError as error:
            if error.code != 429 or time.time() > deadline:
                raise
            time.sleep(min(float(error.headers["Retry-After"]), 0.5))


def raw_upgrade(chat, token):
    sock = send_upgrade(chat, f"/ws?token={token}")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def read_close_code(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    while data:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        if opcode == 0x8:
            return struct.unpack("!H", data[2:4])[0]
        data = data[2 + length:]
    return None


@pytest.mark.parametrize("frame,code", [
    (bytes([0x81, 0x02]) + b"hi", 1002),                                   # unmasked
    (bytes([0x81, 0x84, 1, 2, 3, 4]) + bytes(b ^ m for b, m in zip(b"\xce\xba\xff\xfe", b"\x01\x02\x03\x04")), 1007),
])
def test_protocol_violations_close_with_rfc_codes(chat, frame, code):
    sock = raw_upgrade(chat, "raw")
    sock.sendall(frame)
    assert read_close_code(sock) == code
    sock.close()


def test_sigterm_closes_sessions_with_1001_and_exits():
    from conftest import ChatServer
    server = ChatServer()
    try:
        async def scenario():
            ws = await connect(server, "leaving")
            await subscribe(ws, "chat:general")
            await settle(ws)
            server.process.terminate()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 2 * TIMEOUT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        run(scenario())
        assert server.process.wait(timeout=15 * PATIENCE) == 0
    finally:
        server.stop()


def test_a_second_sigterm_closes_every_connection_at_once():
    """The first SIGTERM drains gracefully; a client that never answers its close holds that
    for seconds. The second closes every connection at once and the process exits (0): it
    was ignored before, and only SIGKILL cut a stuck shutdown short."""
    from conftest import ChatServer
    server = ChatServer()
    try:
        sock = raw_upgrade(server, "stuck")  # never reads: its close is never answered
        # Its session open (listed online) before the first signal: the 101 leaves before the
        # session is registered, and a drain that began in between had nothing to wait for and
        # ended before the second signal (a loaded machine did so in most runs).
        deadline = time.monotonic() + 10 * PATIENCE
        while "stuck" not in presence_of(server):
            assert time.monotonic() < deadline, "the session never opened"
            time.sleep(0.05)
        server.process.terminate()
        deadline = time.monotonic() + 10 * PATIENCE
        while not any("shutting down" in line for line in server.log):
            assert time.monotonic() < deadline, "no shutdown logged"
            time.sleep(0.01)
        server.process.terminate()
        assert server.process.wait(timeout=10 * PATIENCE) == 0
        # Every line read (the pipe's end), not a fixed wait: a loaded run once took longer.
        server.reader.join(timeout=10 * PATIENCE)
        assert any("again: closing every connection now" in line for line in server.log), "".join(server.log[-10:])
        sock.settimeout(5 * PATIENCE)
        data = b""
        while True:  # the 1001 close frame, then the end of the connection
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
    finally:
        server.stop()


def test_health_endpoints(chat):
    for path in ("/livez", "/readyz"):
        with urllib.request.urlopen(chat.http + path, timeout=TIMEOUT) as response:
            assert (response.status, response.read()) == (200, b"ok\n"), path
