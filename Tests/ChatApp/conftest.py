"""Starts the ChatApp binary (CHATAPP_BIN) on a free port for the contract and browser tests."""
import os
import re
import subprocess
import time

import pytest

BIN = os.environ.get("CHATAPP_BIN", ".build/debug/ChatApp")


class ChatServer:
    def __init__(self, *args, port=0):
        self.process = subprocess.Popen(
            [BIN, "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on http://[^:]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("ChatApp did not report its address")

    @classmethod
    def on_port(cls, port, attempts=50):
        """Starts on a given port, retrying while the old socket is still being released."""
        for _ in range(attempts):
            try:
                return cls(port=port)
            except RuntimeError:
                time.sleep(0.1)
        raise RuntimeError(f"could not bind port {port}")

    @property
    def http(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def chat():
    server = ChatServer("--origin", "https://allowed.example")
    yield server
    server.stop()
