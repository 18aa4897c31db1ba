"""History, recovery and presence (PROTOCOL.md, "History and presence"), over real sockets:
one ChatApp alone, and two sharing a redis-server, one of them killed with SIGKILL."""
import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import ChatServer, redis_and_two_chats
from websockets.sync.client import connect as connect_sync

from test_contract import PATIENCE, TIMEOUT, connect, presence_of, run, settle, subscribe


async def recv_full(ws):
    """The next message with its stream position, if any."""
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def chat(ws, text):
    await ws.send(json.dumps({"topic": "chat", "data": {"text": text}}))


async def ask(ws, **request):
    """Subscribes chat:general with history options and returns the `subscribed` answer."""
    await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "chat:general", **request}}))
    answer = await recv_full(ws)
    assert answer["topic"] == "subscribed", answer
    return answer["data"]


async def texts(ws, count):
    """`count` chat messages: their texts and the last one's position."""
    received = []
    for _ in range(count):
        message = await recv_full(ws)
        assert message["topic"] == "chat:general", message
        received.append(message)
    return [m["data"]["data"]["text"] for m in received], {"offset": received[-1]["offset"], "epoch": received[-1]["epoch"]}


@pytest.fixture(scope="module")
def alone():
    server = ChatServer()
    try:
        yield server
    finally:
        server.stop()


def test_chat_messages_carry_positions_and_other_topics_do_not(alone):
    async def scenario():
        ws = await connect(alone, token="pos")
        for topic in ("chat:general", "presence"):
            await subscribe(ws, topic)
        await settle(ws)
        await chat(ws, "one")
        message = await recv_full(ws)
        assert isinstance(message["offset"], int) and len(message["epoch"]) == 8
        other = await connect(alone, token="pos2")  # a join event on presence: no position
        event = await recv_full(ws)
        assert event == {"topic": "presence", "data": {"type": "join", "user": "pos2"}}
        await other.close()
        await ws.close()
    run(scenario())


def test_a_late_joiner_gets_the_last_50_and_a_reconnect_recovers_what_it_missed(alone):
    async def scenario():
        alice = await connect(alone, token="alice")
        await subscribe(alice, "chat:general")
        await settle(alice)
        for n in range(60):
            await chat(alice, f"m{n}")
        last, _ = await texts(alice, 60)

        # Bob joins late and asks for more than 50: he gets the last 50, in order.
        bob = await connect(alone, token="bob")
        answer = await ask(bob, history=80)
        assert answer["recovered"] is False and answer["topic"] == "chat:general"
        got, position = await texts(bob, 50)
        assert got == last[10:]
        assert position == {"offset": answer["offset"], "epoch": answer["epoch"]}

        # Bob drops; alice says three things; bob comes back from his position: exactly those.
        await bob.close()
        for n in range(3):
            await chat(alice, f"missed{n}")
        bob = await connect(alone, token="bob")
        answer = await ask(bob, since=position, history=50)
        assert answer["recovered"] is True
        got, position = await texts(bob, 3)
        assert got == ["missed0", "missed1", "missed2"]
        # Then the live stream, with no duplicate.
        await chat(alice, "live")
        got, _ = await texts(bob, 1)
        assert got == ["live"]

        # A position from another history (another epoch): not recovered, the latest instead.
        stranger = await connect(alone, token="carol")
        answer = await ask(stranger, since={"offset": 3, "epoch": "00000000"}, history=2)
        assert answer["recovered"] is False
        got, _ = await texts(stranger, 2)
        assert got == ["missed2", "live"]
        for ws in (alice, bob, stranger):
            await ws.close()
    run(scenario())


def test_presence_snapshot_lists_each_user_once(alone):
    async def scenario():
        tabs = [await connect(alone, token="dana") for _ in range(2)]
        viewer = await connect(alone, token="erin")
        await viewer.send(json.dumps({"topic": "subscribe", "data": {"topic": "presence", "snapshot": True}}))
        while True:
            message = await recv_full(viewer)
            if message["data"].get("type") == "snapshot":
                break
        assert message["data"]["users"].count("dana") == 1 and "erin" in message["data"]["users"]
        assert presence_of(alone).count("dana") == 1
        # One tab closes: dana is still online; the other closes: dana is gone.
        await tabs[0].close()
        await asyncio.sleep(0.2)
        assert "dana" in presence_of(alone)
        await tabs[1].close()
        deadline = time.time() + 5 * PATIENCE
        while "dana" in presence_of(alone) and time.time() < deadline:
            await asyncio.sleep(0.05)
        assert "dana" not in presence_of(alone)
        await viewer.close()
    run(scenario())


def test_two_nodes_share_history_and_a_killed_nodes_users_expire():
    with redis_and_two_chats("--presence-expiry", "2") as started:
        redis, a, b = started

        async def scenario():
            alice = await connect(a, token="alice")
            await subscribe(alice, "chat:general")
            await settle(alice)
            redis.wait_for_subscribers("mizu-chat:chat:general", 1)
            for n in range(3):
                await chat(alice, f"a{n}")
            await texts(alice, 3)
            # Bob on the other node gets alice's history from Redis.
            bob = await connect(b, token="bob")
            answer = await ask(bob, history=50)
            got, _ = await texts(bob, answer["offset"] if answer["offset"] < 50 else 50)
            assert got[-3:] == ["a0", "a1", "a2"]
            # Both nodes see both users (each node's write to Redis is queued, not awaited).
            for node in (a, b):
                deadline = time.time() + 10 * PATIENCE
                while not {"alice", "bob"} <= set(presence_of(node)) and time.time() < deadline:
                    await asyncio.sleep(0.05)
                assert {"alice", "bob"} <= set(presence_of(node))
            await bob.close()
            await alice.close()
        run(scenario())

        # A third user on node B; node B is killed: no leave, no refresh. Node A stops listing
        # her once the expiry (2 s) has passed since her node's last refresh. (No lower bound
        # on when: a node a loaded machine starved may have refreshed late before it died.)
        zoe = connect_sync(b.ws + "?token=zoe", open_timeout=TIMEOUT)
        deadline = time.time() + 5 * PATIENCE
        while "zoe" not in presence_of(a) and time.time() < deadline:
            time.sleep(0.05)
        assert "zoe" in presence_of(a)
        b.process.kill()
        b.process.wait(timeout=10 * PATIENCE)
        killed = time.time()
        while "zoe" in presence_of(a) and time.time() - killed < 10 * PATIENCE:
            time.sleep(0.1)
        # Gone at all is the point; the wait above only bounds how slow the run may be.
        assert "zoe" not in presence_of(a), f"zoe still listed {time.time() - killed:.1f} s after her node died"
        zoe.socket.close()


def test_a_cut_redis_link_loses_no_message_on_either_node():
    """Both nodes' subscriber links are cut (CLIENT KILL TYPE pubsub) while alice sends a
    message every 10 ms: what pub/sub lost during the reconnect is read back from the stream,
    so alice (node A) and bob (node B) each get all 100, once, in offset order."""
    with redis_and_two_chats() as started:
        redis, a, b = started

        async def scenario():
            alice = await connect(a, token="alice")
            bob = await connect(b, token="bob")
            await ask(alice, history=0)
            await ask(bob, history=0)
            redis.wait_for_subscribers("mizu-chat:chat:general", 2)
            for n in range(100):
                if n == 30:
                    assert redis.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(":")
                await chat(alice, f"m{n}")
                await asyncio.sleep(0.01)
            for ws in (alice, bob):
                received = [await recv_full(ws) for _ in range(100)]
                assert [m["data"]["data"]["text"] for m in received] == [f"m{n}" for n in range(100)]
                offsets = [m["offset"] for m in received]
                assert offsets == list(range(offsets[0], offsets[0] + 100))
                assert len({m["epoch"] for m in received}) == 1
            await alice.close()
            await bob.close()
        run(scenario())


def test_a_client_asking_for_snapshots_in_a_loop_waits_and_nobody_else_does(alone):
    async def scenario():
        spammer = await connect(alone, token="spam")
        other = await connect(alone, token="calm")
        await subscribe(other, "chat:general")
        await settle(other)
        async def snapshot_arrivals():
            arrivals = []
            while len(arrivals) < 14:
                message = await asyncio.wait_for(spammer.recv(), 10 * PATIENCE)
                if '"snapshot"' in message:
                    arrivals.append(time.time())
            return arrivals
        reader = asyncio.create_task(snapshot_arrivals())
        started = time.time()
        for _ in range(14):
            await spammer.send(json.dumps({"topic": "subscribe", "data": {"topic": "presence", "snapshot": True}}))
        # Meanwhile another session is served at once: before the spammer's last snapshot,
        # which its budget holds back for two seconds (an order, not a speed; the 11th, held
        # half a second, was too close for a loaded machine).
        await chat(other, "still fast")
        got, _ = await texts(other, 1)
        victim_answered = time.time()
        assert got == ["still fast"]
        arrivals = await reader
        assert victim_answered < arrivals[13], "the other session waited behind the spammer"
        # 10 at once, then 2 a second: the last 4 take about 2 s.
        assert arrivals[13] - started >= 1.8
        await spammer.close()
        await other.close()
    asyncio.run(asyncio.wait_for(scenario(), 30 * PATIENCE))


def test_a_position_past_any_stream_is_a_bad_request(alone):
    async def scenario():
        ws = await connect(alone, token="far")
        for offset in (2 ** 64 - 1, 2 ** 53):
            await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "chat:general", "since": {"offset": offset, "epoch": "00000000"}}}))
            answer = await recv_full(ws)
            assert answer == {"topic": "error", "data": "bad request"}, answer
        # The largest real offset is a position like any other.
        answer = await ask(ws, since={"offset": 2 ** 53 - 1, "epoch": "00000000"}, history=1)
        assert answer["recovered"] is False
        await ws.close()
    run(scenario())


def test_presence_over_http_is_budgeted_per_client_and_health_is_not_slowed(alone):
    """An unauthenticated loop of GET /api/presence (it was O(sessions) per call) gets 429 past
    its client's budget; /livez answers throughout."""
    time.sleep(5)  # earlier tests' calls have refilled the budget (2 a second, at most 10)
    statuses = []
    for _ in range(30):
        try:
            with urllib.request.urlopen(alone.http + "/api/presence", timeout=TIMEOUT) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            assert error.code == 429 and int(error.headers["Retry-After"]) >= 1
        with urllib.request.urlopen(alone.http + "/livez", timeout=TIMEOUT) as response:
            assert response.status == 200
    # The first 10 at once, then about 2 a second while the loop runs: the rest are refused.
    assert 10 <= statuses.count(200) <= 10 + 2 * 30 * PATIENCE and 429 in statuses, statuses
    assert statuses[:10] == [200] * 10, statuses


@pytest.mark.parametrize("request_data", [
    {"topic": "presence", "snapshot": True},
    {"topic": "chat:general", "history": 50},
], ids=["snapshots", "history-reads"])
def test_a_victim_stays_fast_while_one_client_spends_4000_reads(alone, request_data):
    """400 sessions of one client each ask for 10 snapshots, or 10 history reads of the last 50
    messages (when budgets were per session, 4,000 free snapshots of 400 members took 6 s of
    CPU and another user's round trip went from 2 ms to 5.6 s); another user's chat round trip
    is measured before and during it. The budget is the client's and the reads are shared, so
    the victim's latency stays in the same range: the figure is in the assertion's message."""
    async def round_trips(ws, count):
        times = []
        for index in range(count):
            started = time.time()
            await chat(ws, f"rt {index}")
            got, _ = await texts(ws, 1)
            assert got == [f"rt {index}"]
            times.append(time.time() - started)
        return sorted(times)[len(times) // 2]

    async def scenario():
        victim = await connect(alone, token="victim")
        await subscribe(victim, "chat:general")
        await settle(victim)
        before = await round_trips(victim, 9)
        spammers = [await connect(alone, token=f"spam{index}") for index in range(400)]
        request = json.dumps({"topic": "subscribe", "data": request_data})
        for spammer in spammers:
            for _ in range(10):
                await spammer.send(request)
        during = await round_trips(victim, 9)
        print(f"victim round trip: {before * 1000:.2f} ms before, {during * 1000:.2f} ms during")
        # A relative bound, measured in the same run (a slow machine slows both), with a floor
        # a loaded run's scatter stays under (0.5 s did not) and the 5.6 s this guards against
        # does not.
        assert during <= max(10 * before, 0.2 * PATIENCE), f"victim round trip {before * 1000:.1f} ms before, {during * 1000:.1f} ms during"
        for spammer in spammers:
            await spammer.close()
        await victim.close()
    asyncio.run(asyncio.wait_for(scenario(), 60 * PATIENCE))
