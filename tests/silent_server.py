"""A TCP server on 127.0.0.1 that accepts every connection and never answers: a hanging endpoint, on the wire.

It stands for a service endpoint that takes the request and goes quiet (an overloaded load balancer, a
half-open connection). Connections are held open, unread, until the server stops.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class Silent:
    """What the server saw: how many connections it accepted."""

    def __init__(self) -> None:
        self.accepted = 0
        self.held: list[socket.socket] = []


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, Silent]]:
    """Yield ``(url, what it saw)`` for a server that accepts and never replies; closed on exit."""
    seen = Silent()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            seen.accepted += 1
            seen.held.append(conn)  # kept open and never read: the client waits for an answer

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in seen.held:
            conn.close()
