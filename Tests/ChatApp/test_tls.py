"""`--tls-cert/--tls-key`: the page over https and the endpoint over wss, with a self-signed
certificate made for the test (the ChatApp must be built with `--traits TLS`)."""
import asyncio
import json
import os
import ssl
import subprocess
import tempfile

import pytest
import websockets
from playwright.sync_api import expect

from conftest import BIN, PATIENCE, ChatServer
from test_browser import browser, join  # noqa: F401  (the fixture)
from test_contract import TIMEOUT, run


@pytest.fixture(scope="module")
def certificate():
    folder = tempfile.mkdtemp(prefix="mizu-tls-")
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30 * PATIENCE)
    return cert, key


@pytest.fixture()
def secure_chat(certificate):
    server = ChatServer("--tls-cert", certificate[0], "--tls-key", certificate[1])
    try:
        yield server
    finally:
        server.stop()


def test_a_python_client_chats_over_wss(secure_chat, certificate):
    assert secure_chat.scheme == "https" and secure_chat.ws.startswith("wss://")
    context = ssl.create_default_context(cafile=certificate[0])

    async def scenario():
        async with websockets.connect(secure_chat.ws + "?token=alice", ssl=context, open_timeout=TIMEOUT) as ws:
            await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "chat:general"}}))
            await ws.send(json.dumps({"topic": "chat", "data": {"text": "over tls"}}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if message["topic"] == "chat:general":
                    assert message["data"] == {"user": "alice", "data": {"text": "over tls"}}
                    return
    run(scenario())


def test_the_page_chats_over_https_and_wss_in_chromium(secure_chat, browser):  # noqa: F811
    context = browser.new_context(ignore_https_errors=True)
    alice, bob = context.new_page(), context.new_page()
    join(alice, secure_chat.http + "/", "alice")
    join(bob, secure_chat.http + "/", "bob")
    assert alice.evaluate("location.protocol") == "https:"
    alice.fill("#message", "secure hello")
    alice.press("#message", "Enter")
    expect(bob.locator("#messages")).to_contain_text("secure hello", timeout=10000 * PATIENCE)
    context.close()


def test_tls_flags_go_together_and_need_a_readable_key(certificate):
    for args, reason in [
        (["--tls-cert", certificate[0]], "--tls-cert and --tls-key go together"),
        (["--tls-cert", certificate[0], "--tls-key", "/nonexistent/key.pem"], "TLS certificate or key unusable"),
    ]:
        result = subprocess.run([BIN, "--host", "127.0.0.1", "--port", "0", *args], capture_output=True, text=True, timeout=30 * PATIENCE)
        assert result.returncode != 0 and reason in result.stdout + result.stderr, (args, result.stdout, result.stderr)
