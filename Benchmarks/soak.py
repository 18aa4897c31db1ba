#!/usr/bin/env python3
"""Soak: no silent loss across the Redis backplane (issue 24).

Starts a redis-server and two ChatApps on it (127.0.0.1 only), puts alice on node A and bob on
node B in chat:general, and has alice send numbered messages at a fixed rate while every
`--kill-every` seconds all Redis subscriber links are cut (CLIENT KILL TYPE pubsub; with
`--kill-type all` the publisher links too, TYPE normal, so publishes in flight die). At the end
it counts, for alice and bob, what arrived: lost, duplicated, out of order, notices, errors.

    python3 Benchmarks/soak.py --chatapp .build/release/ChatApp --seconds 600 --rate 50 --kill-every 20

Bounded: it stops by itself after --seconds plus a 30 s drain, and ends only what it started.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import websockets


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(port, *args):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(str(a).encode()), a) for a in args)).encode())
        return conn.recv(65536).decode()


def start_chat(binary, redis_port):
    process = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", "--redis", f"redis://127.0.0.1:{redis_port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        match = re.search(r"listening on http://[^:]+:(\d+)", line)
        if match:
            return process, int(match.group(1))
    process.kill()
    raise RuntimeError("ChatApp did not start")


async def client(port, token):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}", max_size=None)
    await ws.send(json.dumps({"topic": "subscribe", "data": {"topic": "chat:general", "history": 0}}))
    return ws


async def collect(ws, out, stop):
    while not stop.is_set():
        try:
            text = await asyncio.wait_for(ws.recv(), 1)
        except asyncio.TimeoutError:
            continue
        out.append(json.loads(text))


def summarize(name, messages, sent):
    chat = [m for m in messages if m.get("topic") == "chat:general" and "data" in m]
    notices = [m for m in messages if m.get("topic") == "chat:general" and m.get("recovered") is False]
    errors = [m for m in messages if m.get("topic") == "error"]
    numbers = [m["data"]["data"]["n"] for m in chat if isinstance(m["data"].get("data"), dict) and "n" in m["data"]["data"]]
    seen = set(numbers)
    lost = len(set(sent) - seen)
    duplicated = len(numbers) - len(seen)
    out_of_order = sum(1 for x, y in zip(numbers, numbers[1:]) if y <= x)
    offsets = [m["offset"] for m in chat]
    offset_gaps = sum(1 for x, y in zip(offsets, offsets[1:]) if y != x + 1)
    return f"{name}: received={len(numbers)} lost={lost} duplicated={duplicated} out_of_order={out_of_order} offset_gaps={offset_gaps} notices={len(notices)} errors={len(errors)}"


async def soak(args, a_port, b_port, redis_port):
    alice = await client(a_port, "alice")
    bob = await client(b_port, "bob")
    got = {"alice": [], "bob": []}
    stop = asyncio.Event()
    readers = [asyncio.create_task(collect(ws, got[name], stop)) for name, ws in (("alice", alice), ("bob", bob))]
    await asyncio.sleep(1)
    sent, kills, refused = [], 0, 0
    start = time.monotonic()
    next_kill = start + args.kill_every
    n = 0
    while time.monotonic() - start < args.seconds:
        if time.monotonic() >= next_kill:
            redis_command(redis_port, "CLIENT", "KILL", "TYPE", "pubsub")
            if args.kill_type == "all":
                redis_command(redis_port, "CLIENT", "KILL", "TYPE", "normal")
            kills += 1
            next_kill += args.kill_every
        await alice.send(json.dumps({"topic": "chat", "data": {"n": n}}))
        sent.append(n)
        n += 1
        await asyncio.sleep(max(0, start + n / args.rate - time.monotonic()))
    await asyncio.sleep(args.drain)
    stop.set()
    await asyncio.gather(*readers)
    refused = sum(1 for m in got["alice"] if m.get("topic") == "error" and m.get("data") == "not sent")
    print(f"soak: {args.seconds} s at {args.rate}/s, {len(sent)} sent, {kills} cuts of {'all links' if args.kill_type == 'all' else 'the subscriber links'}, {refused} refused ('not sent')")
    for name in ("alice", "bob"):
        print(summarize(name, got[name], sent))
    await alice.close()
    await bob.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chatapp", default=".build/release/ChatApp")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--kill-every", type=float, default=20)
    parser.add_argument("--kill-type", choices=["pubsub", "all"], default="pubsub")
    parser.add_argument("--drain", type=float, default=5)
    args = parser.parse_args()
    redis_port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--loglevel", "warning"], stdout=subprocess.DEVNULL)
    started = [redis]
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        a, a_port = start_chat(args.chatapp, redis_port)
        started.append(a)
        b, b_port = start_chat(args.chatapp, redis_port)
        started.append(b)
        asyncio.run(asyncio.wait_for(soak(args, a_port, b_port, redis_port), args.seconds + args.drain + 30))
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
