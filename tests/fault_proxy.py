"""A fault-injecting HTTP proxy in front of the moto server: faults happen on the wire, not in a patched client.

Every request is forwarded to moto unchanged. For chosen Kinesis ``PutRecords`` calls (counted from 1) the
proxy forwards the call, so the records really go into the stream, and then *loses the response*: the client
gets an error instead of moto's answer. This is how an at-least-once duplicate is born in real life.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PUT_RECORDS = "Kinesis_20131202.PutRecords"
_SKIPPED_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class LostResponses:
    """What the proxy did: ``{call number: (HTTP status returned, records forwarded)}`` for each lost response."""

    def __init__(self, faults: Mapping[int, tuple[int, str]]) -> None:
        self.faults = dict(faults)  # call number -> (status, AWS error code) returned instead of moto's reply
        self.calls = 0
        self.lost: dict[int, tuple[int, int]] = {}
        self.lock = threading.Lock()


def _handler(target: str, state: LostResponses) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: object) -> None:  # quiet: the test output is for the test
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIPPED_HEADERS}
            request = urllib.request.Request(
                target + self.path, data=body or None, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as reply:
                    status, reply_headers, reply_body = reply.status, reply.headers.items(), reply.read()
            except urllib.error.HTTPError as exc:
                status, reply_headers, reply_body = exc.code, exc.headers.items(), exc.read()
            fault = None
            if self.headers.get("X-Amz-Target") == PUT_RECORDS:
                with state.lock:
                    state.calls += 1
                    fault = state.faults.get(state.calls)
                    if fault:
                        state.lost[state.calls] = (fault[0], len(json.loads(body)["Records"]))
            if fault:  # moto has put the records; the client is told the call failed
                status, code = fault
                reply_body = json.dumps({"__type": code, "message": "response lost by the test's proxy"}).encode()
                reply_headers = [("Content-Type", "application/x-amz-json-1.1")]
            self.send_response(status)
            for key, value in reply_headers:
                if key.lower() not in _SKIPPED_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply_body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply_body)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    return Forward


@contextlib.contextmanager
def lost_responses(target: str, faults: Mapping[int, tuple[int, str]]) -> Iterator[tuple[str, LostResponses]]:
    """Run the proxy on a free loopback port; yield its URL and what it did."""
    state = LostResponses(faults)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(target, state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
