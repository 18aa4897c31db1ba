"""The chat page in a real headless Chromium (Debian's), driven by Playwright."""
import os
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import PATIENCE, ChatServer, redis_and_two_chats

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = os.environ.get("ARTIFACTS_DIR", "artifacts")
# Every wait on the page is scaled like the rest of the suite (Playwright's own 5 s and 30 s
# defaults are a fast machine's).
expect.set_options(timeout=5000 * PATIENCE)


@pytest.fixture()
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=30000 * PATIENCE)
        try:
            yield browser
        finally:
            browser.close()


def join(page, url, name):
    page.set_default_timeout(30000 * PATIENCE)
    page.goto(url)
    page.fill("#name", name)
    page.press("#name", "Enter")
    expect(page.locator("#status")).to_have_text("connected", timeout=10000 * PATIENCE)


def test_two_people_chat_and_the_page_reconnects(browser):
    server = ChatServer()
    try:
        url = server.http + "/"
        alice = browser.new_page(viewport={"width": 1100, "height": 700})
        bob = browser.new_page(viewport={"width": 390, "height": 760})  # a phone
        join(alice, url, "alice")
        join(bob, url, "bob")

        # Presence: alice saw bob join; each page shows its own user.
        expect(alice.locator("#presence")).to_contain_text("bob")
        expect(bob.locator("#presence")).to_contain_text("bob")

        alice.fill("#message", "hello bob")
        alice.press("#message", "Enter")
        expect(alice.locator("#message")).to_have_value("")
        expect(bob.locator("#messages")).to_contain_text("hello bob")
        expect(bob.locator("#messages li").last).to_contain_text("alice")

        bob.fill("#message", "hi alice")
        bob.press("#message", "Enter")
        expect(alice.locator("#messages")).to_contain_text("hi alice")

        # An XSS payload is shown as text and never runs.
        payload = '<img src=x onerror="window.__pwned=1">'
        bob.fill("#message", payload)
        bob.press("#message", "Enter")
        expect(alice.locator("#messages li").last).to_contain_text(payload)
        assert alice.locator("#messages img").count() == 0
        assert alice.evaluate("window.__pwned") is None

        os.makedirs(ARTIFACTS, exist_ok=True)
        alice.screenshot(path=os.path.join(ARTIFACTS, "chat-alice.png"))
        bob.screenshot(path=os.path.join(ARTIFACTS, "chat-bob.png"))

        # The server restarts on the same port: both pages reconnect and chat again.
        port = server.port
        server.stop()
        expect(alice.locator("#status")).to_have_text("reconnecting", timeout=10000 * PATIENCE)
        server = ChatServer.on_port(port)
        expect(alice.locator("#status")).to_have_text("connected", timeout=20000 * PATIENCE)
        expect(bob.locator("#status")).to_have_text("connected", timeout=20000 * PATIENCE)
        alice.fill("#message", "back again")
        alice.press("#message", "Enter")
        expect(bob.locator("#messages")).to_contain_text("back again", timeout=10000 * PATIENCE)
    finally:
        server.stop()


def test_two_servers_sharing_redis_are_one_chat(browser):
    with redis_and_two_chats() as started:
        redis, a, b = started
        alice = browser.new_page(viewport={"width": 1100, "height": 700})
        bob = browser.new_page(viewport={"width": 390, "height": 760})
        join(alice, a.http + "/", "alice")
        redis.wait_for_subscribers("mizu-chat:presence", 1)
        join(bob, b.http + "/", "bob")
        redis.wait_for_subscribers("mizu-chat:chat:general", 2)

        expect(alice.locator("#presence")).to_contain_text("bob")

        alice.fill("#message", "hello from server A")
        alice.press("#message", "Enter")
        expect(bob.locator("#messages")).to_contain_text("hello from server A")
        bob.fill("#message", "hello from server B")
        bob.press("#message", "Enter")
        expect(alice.locator("#messages")).to_contain_text("hello from server B")
        # Each message shows once on each page.
        expect(alice.locator("#messages li", has_text="hello from server A")).to_have_count(1)
        expect(bob.locator("#messages li", has_text="hello from server B")).to_have_count(1)

        os.makedirs(ARTIFACTS, exist_ok=True)
        alice.screenshot(path=os.path.join(ARTIFACTS, "chat-redis-alice-on-a.png"))
        bob.screenshot(path=os.path.join(ARTIFACTS, "chat-redis-bob-on-b.png"))


def test_the_page_shows_every_message_once_across_a_redis_link_drop(browser):
    """Bob's page is on node B; alice (node A) sends 40 messages, one every 20 ms, and every
    node's Redis subscriber link is cut after the 15th: the page shows all 40, once each, in
    order (what pub/sub lost is read back from the stream by the node)."""
    with redis_and_two_chats() as started:
        redis, a, b = started
        alice = browser.new_page(viewport={"width": 1100, "height": 700})
        bob = browser.new_page(viewport={"width": 390, "height": 760})
        join(alice, a.http + "/", "alice")
        join(bob, b.http + "/", "bob")
        redis.wait_for_subscribers("mizu-chat:chat:general", 2)
        for n in range(40):
            if n == 15:
                assert redis.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(":")
            alice.fill("#message", f"drop-{n:02d}")
            alice.press("#message", "Enter")
            alice.wait_for_timeout(20)
        expect(bob.locator("#messages li", has_text="drop-")).to_have_count(40, timeout=20000 * PATIENCE)
        texts = bob.locator("#messages li .text").all_text_contents()
        assert [t for t in texts if t.startswith("drop-")] == [f"drop-{n:02d}" for n in range(40)]
        expect(bob.locator("#notice")).to_be_hidden()


def test_a_late_joiner_sees_who_is_here_and_what_was_said_and_recovers_after_a_restart(browser):
    with redis_and_two_chats() as started:
        redis, a, b = started
        alice = browser.new_page(viewport={"width": 1100, "height": 700})
        join(alice, a.http + "/", "alice")
        for text in ("said before bob came", "and once more"):
            alice.fill("#message", text)
            alice.press("#message", "Enter")
            expect(alice.locator("#messages li", has_text=text)).to_have_count(1)

        # Bob joins late on the other server: alice is online, her messages are there.
        bob = browser.new_page(viewport={"width": 390, "height": 760})
        join(bob, b.http + "/", "bob")
        expect(bob.locator("#presence")).to_contain_text("alice")
        expect(bob.locator("#messages li", has_text="said before bob came")).to_have_count(1)
        expect(bob.locator("#messages li", has_text="and once more")).to_have_count(1)

        # Alice opens a second tab: still listed once on bob's page.
        alice_again = browser.new_page()
        join(alice_again, a.http + "/", "alice")
        expect(bob.locator("#presence li", has_text="alice")).to_have_count(1)
        alice_again.close()

        # Bob's server restarts while his tab is open; alice posts meanwhile on hers.
        port = b.port
        b.stop()
        expect(bob.locator("#status")).to_have_text("reconnecting", timeout=10000 * PATIENCE)
        alice.fill("#message", "posted while bob was away")
        alice.press("#message", "Enter")
        expect(alice.locator("#messages li", has_text="posted while bob was away")).to_have_count(1)
        b = ChatServer.on_port(port, "--redis", redis.url)
        started.append(b)
        expect(bob.locator("#status")).to_have_text("connected", timeout=20000 * PATIENCE)
        # Recovered: exactly once, after what he had, and nothing he had shown twice.
        expect(bob.locator("#messages li", has_text="posted while bob was away")).to_have_count(1, timeout=10000 * PATIENCE)
        expect(bob.locator("#messages li", has_text="said before bob came")).to_have_count(1)
        expect(bob.locator("#messages li").last).to_contain_text("posted while bob was away")
        expect(bob.locator("#notice")).to_be_hidden()
        alice.fill("#message", "welcome back")
        alice.press("#message", "Enter")
        expect(bob.locator("#messages li", has_text="welcome back")).to_have_count(1)
        expect(bob.locator("#presence")).to_contain_text("alice")

        os.makedirs(ARTIFACTS, exist_ok=True)
        bob.screenshot(path=os.path.join(ARTIFACTS, "chat-bob-recovered.png"))
