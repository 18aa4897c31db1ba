"""Starts the ChatApp binary (CHATAPP_BIN) on a free port for the contract and browser tests."""
import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

# How much slower than an idle machine the run may be (scripts/test.sh sets it; see
# Tests/Support/Patience.swift): every wait for the server, a browser or a redis-server is
# multiplied by it.
PATIENCE = max(1, int(os.environ.get("MIZU_TEST_PATIENCE", "1")))

BIN = os.environ.get("CHATAPP_BIN", ".build/debug/ChatApp")


def stop_process(process):
    """SIGTERM, then SIGKILL if it has not exited within 10 s (times the patience)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10 * PATIENCE)
        except subprocess.TimeoutExpired:
            process.kill()


class ChatServer:
    def __init__(self, *args, port=0):
        self.process = subprocess.Popen(
            [BIN, "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30 * PATIENCE
        self.port = None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on (https?)://[^:]+:(\d+)", line)
            if match:
                self.scheme = match.group(1)
                self.port = int(match.group(2))
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("ChatApp did not report its address")
        # Keep reading its log, so a chatty server never blocks on a full pipe.
        self.log = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.process.stdout:
            self.log.append(line)

    @classmethod
    def on_port(cls, port, *args, attempts=50):
        """Starts on a given port, retrying while the old socket is still being released."""
        for _ in range(attempts):
            try:
                return cls(*args, port=port)
            except RuntimeError:
                time.sleep(0.1)
        raise RuntimeError(f"could not bind port {port}")

    @property
    def http(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws(self):
        return f"{'wss' if self.scheme == 'https' else 'ws'}://127.0.0.1:{self.port}/ws"

    def stop(self):
        stop_process(self.process)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of our own on 127.0.0.1 (not the system service), for the backplane."""

    def __init__(self):
        self.port = free_port()
        executable = shutil.which("redis-server") or "/usr/sbin/redis-server"
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10 * PATIENCE
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *args):
        """One command through a raw RESP exchange; returns the reply's first line(s) as text."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5 * PATIENCE) as conn:
            request = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
            conn.sendall(request.encode())
            return conn.recv(65536).decode()

    def subscribers(self, channel):
        reply = self.command("PUBSUB", "NUMSUB", channel).split("\r\n")
        return int(reply[3].lstrip(":"))

    def wait_for_subscribers(self, channel, count, timeout=10):
        deadline = time.time() + timeout * PATIENCE
        while time.time() < deadline:
            if self.subscribers(channel) == count:
                return
            time.sleep(0.02)
        raise AssertionError(f"{channel} never had {count} subscribers")

    def stop(self):
        stop_process(self.process)


@contextlib.contextmanager
def redis_and_two_chats(*args):
    """A redis-server and two ChatApps on it (`--redis` plus `args`), as a list to which a
    test appends what it starts later: everything in it is stopped, even after a failed start."""
    started = [RedisServer()]
    try:
        for _ in range(2):
            started.append(ChatServer("--redis", started[0].url, *args))
        yield started
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="module")
def chat():
    server = ChatServer("--origin", "https://allowed.example")
    try:
        yield server
    finally:
        server.stop()
