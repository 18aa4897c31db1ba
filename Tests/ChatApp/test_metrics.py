"""`--metrics`: the Prometheus text format at /metrics moves as a chat goes on."""
import json
import re
import time
import urllib.error
import urllib.request

from conftest import ChatServer
from test_contract import PATIENCE, TIMEOUT, connect, recv_raw, run, settle, subscribe


def scrape(server):
    with urllib.request.urlopen(server.http + "/metrics", timeout=TIMEOUT) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def test_metrics_follow_a_chat():
    server = ChatServer("--metrics")
    try:
        before = scrape(server)
        assert before["mizu_live_sessions"] == 0

        async def scenario():
            alice, bob = await connect(server, "alice"), await connect(server, "bob")
            for ws in (alice, bob):
                await subscribe(ws, "chat:general")
                await settle(ws)
            during = scrape(server)
            assert during["mizu_live_sessions"] == 2
            assert during["mizu_live_sessions_opened_total"] == 2
            assert during["mizu_http_connections"] >= 2
            for n in range(3):
                await alice.send(json.dumps({"topic": "chat", "data": n}))
            for ws in (alice, bob):
                for _ in range(3):
                    await recv_raw(ws)
            after = scrape(server)
            # Each chat message reached two subscribers.
            assert after["mizu_live_deliveries_total"] - during["mizu_live_deliveries_total"] >= 6
            assert after["mizu_live_messages_received_total"] - during["mizu_live_messages_received_total"] == 3
            assert after['mizu_http_requests_total{method="GET",status="1xx"}'] == 2  # the two upgrades
            await alice.close()
            await bob.close()

        run(scenario())
        # The closes are counted once the server has handled them: waited for, within the
        # patience (a hundred back-to-back scrapes were a fast machine's time).
        deadline = time.monotonic() + 10 * PATIENCE
        while True:
            final = scrape(server)
            if final["mizu_live_sessions"] == 0 and final.get('mizu_live_sessions_closed_total{reason="clean"}') == 2:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert final["mizu_live_sessions"] == 0
        assert final['mizu_live_sessions_closed_total{reason="clean"}'] == 2
        assert any(re.match(r"mizu_live_fanout_duration_seconds_count", name) for name in final)
    finally:
        server.stop()


def test_no_metrics_endpoint_without_the_flag(chat):
    try:
        urllib.request.urlopen(chat.http + "/metrics", timeout=TIMEOUT)
        raise AssertionError("/metrics answered without --metrics")
    except urllib.error.HTTPError as error:
        assert error.code == 404
