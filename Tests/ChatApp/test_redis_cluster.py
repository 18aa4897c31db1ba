"""Two ChatApp processes on a Redis Cluster (`--redis-cluster SEEDS`) form one chat."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import ChatServer, stop_process
from test_contract import PATIENCE, connect, recv, run, settle, subscribe


def cluster_port():
    """A free port whose cluster bus port (10,000 above) is free too."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def cluster():
    """Six cluster-enabled redis-servers made into 3 primaries with a replica each."""
    directory = tempfile.mkdtemp(prefix="mizu-cluster-")
    executable = shutil.which("redis-server") or "/usr/sbin/redis-server"
    ports, processes = [], []
    try:
        for index in range(6):
            port = cluster_port()
            processes.append(subprocess.Popen(
                [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--cluster-enabled", "yes", "--cluster-config-file", os.path.join(directory, f"nodes-{index}.conf"),
                 "--dir", directory, "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
        for port in ports:
            deadline = time.time() + 10 * PATIENCE
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.time() < deadline, f"redis-server on {port} did not start"
                    time.sleep(0.05)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{port}" for port in ports], "--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60 * PATIENCE)
        deadline = time.time() + 3 * PATIENCE
        for port in ports:
            while "cluster_state:ok" not in subprocess.run(
                    ["redis-cli", "-p", str(port), "CLUSTER", "INFO"], capture_output=True, text=True, timeout=10 * PATIENCE).stdout:
                assert time.time() < deadline, f"the cluster never became ok on {port}"
                time.sleep(0.05)
        yield ports
    finally:
        for process in processes:
            stop_process(process)
        shutil.rmtree(directory, ignore_errors=True)


def test_two_processes_on_a_cluster_form_one_chat(cluster):
    seeds = f"127.0.0.1:{cluster[0]},redis://127.0.0.1:{cluster[1]}"
    a = ChatServer("--redis-cluster", seeds)
    try:
        b = ChatServer("--redis-cluster", seeds)
    except BaseException:
        a.stop()
        raise
    rooms = ["chat:general"] + [f"chat:room{n}" for n in range(6)]

    async def scenario():
        alice, bob = await connect(a, token="alice"), await connect(b, token="bob")
        for room in rooms:
            await subscribe(bob, room)
        await settle(bob)
        for room in rooms:
            shard_channels = set()
            for port in cluster:
                shard_channels |= set(subprocess.run(
                    ["redis-cli", "-p", str(port), "PUBSUB", "SHARDCHANNELS", "mizu-chat:*"],
                    capture_output=True, text=True, timeout=10 * PATIENCE).stdout.split())
            assert "mizu-chat:{" + room + "}" in shard_channels, room
        for room in rooms:
            await alice.send('{"topic":"%s","data":{"text":"hi %s"}}' % (room, room))
        got = [await recv(bob) for _ in rooms]
        assert sorted(got, key=lambda m: m["topic"]) == sorted(
            [{"topic": room, "data": {"user": "alice", "data": {"text": f"hi {room}"}}} for room in rooms],
            key=lambda m: m["topic"])
        await alice.close()
        await bob.close()

    try:
        run(scenario())
    finally:
        a.stop()
        b.stop()
