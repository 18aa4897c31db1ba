"""Two ChatApp processes sharing one redis-server (`--redis URL`) form one chat."""
import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, PATIENCE, ChatServer, RedisServer
from test_contract import connect, recv, run, settle, subscribe


@pytest.fixture(scope="module")
def redis():
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def nodes(redis):
    a = ChatServer("--redis", redis.url)
    try:
        b = ChatServer("--redis", redis.url)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def chat_message(user, data):
    return {"topic": "chat:general", "data": {"user": user, "data": data}}


async def expect_next(ws, expected):
    """The next message is `expected`: nothing was duplicated or lost in between."""
    assert await recv(ws) == expected


def test_two_processes_form_one_chat(redis, nodes):
    a, b = nodes

    async def scenario():
        alice = await connect(a, token="alice")
        for topic in ("chat:general", "presence"):
            await subscribe(alice, topic)
        await settle(alice)
        redis.wait_for_subscribers("mizu-chat:presence", 1)

        # Bob joins on the other process: alice sees it.
        bob = await connect(b, token="bob")
        await expect_next(alice, {"topic": "presence", "data": {"type": "join", "user": "bob"}})
        for topic in ("chat:general", "presence"):
            await subscribe(bob, topic)
        await settle(bob)
        redis.wait_for_subscribers("mizu-chat:chat:general", 2)

        # Chat both ways, each message exactly once on each side, in order per sender.
        for n in range(5):
            await alice.send(json.dumps({"topic": "chat", "data": f"a{n}"}))
        for n in range(5):
            await expect_next(bob, chat_message("alice", f"a{n}"))
            await expect_next(alice, chat_message("alice", f"a{n}"))
        await bob.send(json.dumps({"topic": "chat", "data": "hi alice"}))
        await expect_next(alice, chat_message("bob", "hi alice"))
        await expect_next(bob, chat_message("bob", "hi alice"))

        # An announcement posted to process B reaches alice on A.
        request = urllib.request.Request(
            b.http + "/api/announce", data=json.dumps({"text": "maintenance"}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5 * PATIENCE) as response:
            assert response.status == 204
        announcement = chat_message("server", {"text": "maintenance"})
        await expect_next(alice, announcement)
        await expect_next(bob, announcement)

        # Bob leaves: alice on the other process sees it.
        await bob.close()
        await expect_next(alice, {"topic": "presence", "data": {"type": "leave", "user": "bob"}})
        await alice.close()

    run(scenario())


def test_a_bad_redis_stops_start_up_with_the_reason(redis):
    cases = [
        (f"redis://:secret@127.0.0.1:{redis.port}", "Redis refused AUTH"),  # this Redis has no password
        (f"redis://127.0.0.1:{redis.port}/99", "Redis refused SELECT"),
        ("redis://127.0.0.1:1", "cannot connect to Redis at 127.0.0.1:1: Connection refused"),
        # A TLS build tries and says why it failed; a build without the trait says what it lacks.
        ("rediss://127.0.0.1:1", ("cannot connect to Redis at 127.0.0.1:1", "needs a build with the TLS trait")),
    ]
    for url, reasons in cases:
        result = subprocess.run([BIN, "--host", "127.0.0.1", "--port", "0", "--redis", url],
                                capture_output=True, text=True, timeout=30 * PATIENCE)
        assert result.returncode != 0, url
        reasons = reasons if isinstance(reasons, tuple) else (reasons,)
        assert any(reason in result.stdout + result.stderr for reason in reasons), (url, result.stdout, result.stderr)


def get(url):
    """Status and body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=10 * PATIENCE) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for_status(url, status, timeout=15):
    deadline = time.time() + timeout * PATIENCE
    while time.time() < deadline:
        answer = get(url)
        if answer[0] == status:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered {status}")


def test_readyz_follows_the_broker_and_livez_stays_up():
    redis = RedisServer()
    node = None
    try:
        node = ChatServer("--redis", redis.url)
        assert get(node.http + "/livez") == (200, "ok\n")
        assert get(node.http + "/readyz") == (200, "ok\n")
        redis.stop()  # the broker loses its connection: not ready, but alive
        assert wait_for_status(node.http + "/readyz", 503) == (503, "not ready: redis\n")
        assert get(node.http + "/livez") == (200, "ok\n")
    finally:
        if node:
            node.stop()
        redis.stop()
