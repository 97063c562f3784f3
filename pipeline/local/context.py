"""A stand-in for the Lambda context object, for running the handler outside Lambda."""

from __future__ import annotations

import time
import uuid

__all__ = ["LocalContext"]


class LocalContext:
    """A stand-in for the Lambda context: a request id and a clock counting down from *timeout_ms*."""

    def __init__(self, timeout_ms: int = 300_000, function_name: str = "local-transform") -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation would time out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))
