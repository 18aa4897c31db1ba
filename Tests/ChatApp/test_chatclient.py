"""Examples/ChatClient (MizuLiveClient) against real ChatApps, as issue 26's contract says:
history on join, every message once and in order across a SIGTERM restart and a SIGKILL of
its node (two nodes on a redis-server, another client publishing steadily), a frozen server
(SIGSTOP) detected and recovered, 401 stops, Retry-After respected, EOF exits cleanly."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time

import websockets

from conftest import BIN, ChatServer, RedisServer, free_port, stop_process
from test_contract import PATIENCE, TIMEOUT

CLIENT_BIN = os.environ.get("CHATCLIENT_BIN", os.path.join(os.path.dirname(BIN), "ChatClient"))


class ChatClientProcess:
    """A ChatClient with its stdin open; stdout's JSON lines and stderr's lines are collected."""

    def __init__(self, url, user, room=None, dead_after=None):
        args = [CLIENT_BIN, url, "--user", user]
        if room:
            args += ["--room", room]
        if dead_after:
            args += ["--dead-after", str(dead_after)]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = []
        self.status = []
        self.raw = []
        self.readers = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self):
        for line in self.process.stdout:
            self.raw.append(line)
            self.lines.append(json.loads(line))

    def _read_stderr(self):
        for line in self.process.stderr:
            self.status.append(line.rstrip("\n"))

    def say(self, text):
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def wait_for(self, predicate, what, timeout=None):
        deadline = time.time() + (timeout or 10 * PATIENCE)
        while time.time() < deadline:
            if predicate(self):
                return
            if self.process.poll() is not None:
                self.read_to_end()  # what it wrote before exiting may still be in the pipe
                if predicate(self):
                    return
                break
            time.sleep(0.02)
        raise AssertionError(f"ChatClient never {what}; stdout {self.raw[-5:]}, stderr {self.status[-10:]}")

    def wait_for_status(self, word, after=0, timeout=None):
        self.wait_for(lambda c: any(word in line for line in c.status[after:]), f"said '{word}'", timeout)

    def texts(self, user=None):
        return [line["text"] for line in self.lines if user is None or line["user"] == user]

    def finish(self, timeout=None):
        """EOF on stdin; returns the exit code, once all it wrote has been read."""
        self.process.stdin.close()
        code = self.process.wait(timeout=timeout or 10 * PATIENCE)
        self.read_to_end()
        return code

    def read_to_end(self):
        """Waits for the readers to reach the exited process's end of output."""
        for reader in self.readers:
            reader.join(timeout=10 * PATIENCE)

    def stop(self):
        stop_process(self.process)


def assert_contiguous(lines):
    """Offsets of one epoch grow by one: nothing missing, nothing twice."""
    offsets = [line["offset"] for line in lines]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), offsets
    assert len({line["epoch"] for line in lines}) == 1


def publish(ws_url, user, room, texts, interval, permits=None):
    """Another client publishing steadily (plain WebSocket, the contract's room message); with
    `permits` (a semaphore), each message waits for one: the test decides how many go out."""
    async def scenario():
        async with websockets.connect(f"{ws_url}?token={user}", open_timeout=TIMEOUT) as ws:
            for text in texts:
                if permits is not None:
                    await asyncio.to_thread(permits.acquire)
                await ws.send(json.dumps({"topic": f"chat:{room}", "data": {"text": text}}))
                await asyncio.sleep(interval)
            # A round trip: everything sent before it has been published.
            await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "admin:sync"}}))
            while json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) != {"topic": "error", "data": "not allowed"}:
                pass
    asyncio.run(asyncio.wait_for(scenario(), 120 * PATIENCE))


def test_history_on_join_then_live_then_eof_closes_cleanly(chat):
    publish(chat.ws, "ann", "cc-join", [f"old {n}" for n in range(3)], 0)
    client = ChatClientProcess(chat.ws, "bob", room="cc-join")
    try:
        client.wait_for(lambda c: len(c.lines) >= 3, "printed the history")
        assert client.texts() == ["old 0", "old 1", "old 2"] and {line["user"] for line in client.lines} == {"ann"}
        assert_contiguous(client.lines)
        assert list(client.lines[0]) == ["user", "text", "offset", "epoch"], "the contract's members, in its order"
        client.say("hello from bob")
        client.say("and \"quotes\" \\ too")
        client.wait_for(lambda c: len(c.lines) >= 5, "printed its own lines")
        assert client.texts()[3:] == ["hello from bob", "and \"quotes\" \\ too"]
        assert_contiguous(client.lines)
        # Lines read just before EOF are sent before the close.
        client.say("last words")
        assert client.finish() == 0, client.status
    finally:
        client.stop()
    reader = ChatClientProcess(chat.ws, "carol", room="cc-join")
    try:
        reader.wait_for(lambda c: len(c.lines) >= 6, "printed the room's history")
        assert reader.texts()[-1] == "last words"
        assert reader.finish() == 0
    finally:
        reader.stop()


def test_unauthorized_exits_non_zero_with_one_line_and_no_retry(chat):
    refusals_before = sum("onAuth refused" in line for line in chat.log)
    client = ChatClientProcess(chat.ws, "not a token!")
    try:
        code = client.process.wait(timeout=10 * PATIENCE)
        client.read_to_end()
        assert code != 0
        assert len(client.status) == 1 and "401" in client.status[0], client.status
        def refusals():
            return sum("onAuth refused" in line for line in chat.log) - refusals_before
        # The server's log line is read by a thread: waited for, not assumed within a second.
        deadline = time.time() + 10 * PATIENCE
        while refusals() < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert refusals() == 1, "one attempt only"
    finally:
        client.stop()


def test_retry_after_of_a_503_is_waited():
    """A fake server: the first handshake is answered 503 with Retry-After: 2, then the socket
    closes; the next attempt must not come sooner."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(30 * PATIENCE)
    port = listener.getsockname()[1]
    client = ChatClientProcess(f"ws://127.0.0.1:{port}/ws", "ann")
    try:
        attempts = []
        for _ in range(2):
            conn, _ = listener.accept()
            attempts.append(time.monotonic())
            conn.settimeout(5 * PATIENCE)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            assert request.startswith(b"GET /ws?token=ann HTTP/1.1\r\n"), request
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy")
            conn.close()
        assert attempts[1] - attempts[0] >= 2.0, attempts
        assert any("503" in line for line in client.status), client.status
    finally:
        client.stop()
        listener.close()


def test_every_message_once_in_order_across_sigterm_and_sigkill_of_its_node():
    redis = RedisServer()
    port_a = free_port()
    nodes = []
    client = None
    try:
        nodes.append(ChatServer.on_port(port_a, "--redis", redis.url))
        node_b = ChatServer("--redis", redis.url)
        nodes.append(node_b)
        url_a = f"ws://127.0.0.1:{port_a}/ws"
        client = ChatClientProcess(url_a, "reader", room="cc-nodes")
        client.wait_for_status("connected")
        redis.wait_for_subscribers("mizu-chat:chat:cc-nodes", 1)
        texts = [str(n) for n in range(200)]
        # The test hands out the messages, phase by phase: while the client is away at most 40
        # are published, well inside the room's history (100), however slow a restart is (a
        # steady 50 a second could pass 100 while a loaded machine restarted the node).
        permits = threading.Semaphore(0)
        publisher = threading.Thread(target=publish, args=(node_b.ws, "writer", "cc-nodes", texts, 0.02, permits))
        publisher.start()
        permits.release(20)
        client.wait_for(lambda c: len(c.texts("writer")) >= 20, "received the first messages")

        # SIGTERM: node A drains (1001), the client comes back to the restarted node.
        nodes[0].process.send_signal(signal.SIGTERM)
        nodes[0].process.wait(timeout=30 * PATIENCE)
        client.say("queued while away")  # sent once the client is back
        permits.release(40)
        nodes[0] = ChatServer.on_port(port_a, "--redis", redis.url)
        client.wait_for(lambda c: len(c.texts("writer")) >= 60, "received messages after the SIGTERM restart")
        # Delivered before the SIGKILL: a publish still in flight when its node dies is
        # reported lost, not sent twice (a loaded run once killed the node first).
        client.wait_for(lambda c: "queued while away" in c.texts("reader"), "the message queued while away")

        # SIGKILL: no close at all; the client notices the lost connection and recovers.
        nodes[0].process.kill()
        nodes[0].process.wait(timeout=30 * PATIENCE)
        permits.release(40)
        time.sleep(0.5)
        nodes[0] = ChatServer.on_port(port_a, "--redis", redis.url)
        permits.release(len(texts) - 100)

        publisher.join(timeout=120 * PATIENCE)
        client.wait_for(lambda c: len(c.texts("writer")) >= len(texts), "received every message", timeout=30 * PATIENCE)
        time.sleep(0.5)
        assert client.texts("writer") == texts, "each message once, in order"
        assert "queued while away" in client.texts("reader")
        assert_contiguous(client.lines)
        assert not any("missed" in line for line in client.status), client.status
        assert client.finish() == 0
    finally:
        if client:
            client.stop()
        for node in reversed(nodes):
            node.stop()
        redis.stop()


def test_a_frozen_server_is_detected_and_recovered_from():
    redis = RedisServer()
    nodes = []
    client = None
    try:
        node_a = ChatServer("--redis", redis.url)
        nodes.append(node_a)
        node_b = ChatServer("--redis", redis.url)
        nodes.append(node_b)
        client = ChatClientProcess(node_a.ws, "reader", room="cc-frozen", dead_after=2)
        client.wait_for_status("connected")
        redis.wait_for_subscribers("mizu-chat:chat:cc-frozen", 1)
        # Slow enough that what is published while the node is frozen stays within the room's
        # history (100 messages): recovery can bring it all.
        texts = [str(n) for n in range(100)]
        publisher = threading.Thread(target=publish, args=(node_b.ws, "writer", "cc-frozen", texts, 0.05))
        publisher.start()
        client.wait_for(lambda c: len(c.lines) >= 10, "received the first messages")
        said = len(client.status)
        node_a.process.send_signal(signal.SIGSTOP)
        try:
            # Nothing arrives for the dead-after time: the client gives the connection up.
            client.wait_for_status("connection dead", after=said, timeout=15 * PATIENCE)
        finally:
            node_a.process.send_signal(signal.SIGCONT)
        publisher.join(timeout=120 * PATIENCE)
        client.wait_for(lambda c: len(c.texts("writer")) >= len(texts), "received every message", timeout=40 * PATIENCE)
        time.sleep(0.5)
        assert client.texts("writer") == texts
        assert_contiguous(client.lines)
        assert client.finish() == 0
    finally:
        if client:
            client.stop()
        for node in reversed(nodes):
            node.process.send_signal(signal.SIGCONT)
            node.stop()
        redis.stop()


def test_a_lost_history_is_said_with_missed():
    """The node restarts without Redis: its memory history is gone (a new epoch). The client
    prints what the new history gives and says 'missed' on stderr."""
    port = free_port()
    node = ChatServer.on_port(port)
    client = None
    try:
        client = ChatClientProcess(f"ws://127.0.0.1:{port}/ws", "reader", room="cc-lost")
        client.wait_for_status("connected")
        client.say("before")
        client.wait_for(lambda c: len(c.lines) >= 1, "printed its line")
        node.stop()
        node = ChatServer.on_port(port)
        client.wait_for_status("missed", timeout=30 * PATIENCE)
        client.say("after")
        client.wait_for(lambda c: len(c.lines) >= 2, "printed the line of the new epoch")
        assert client.texts() == ["before", "after"]
        assert client.lines[0]["epoch"] != client.lines[1]["epoch"]
        assert client.finish() == 0
    finally:
        if client:
            client.stop()
        node.stop()
