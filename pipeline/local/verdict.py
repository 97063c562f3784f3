"""How Firehose judges one invocation of the transformation: accepted, or which error each record goes out with.

* The function raised, or answered with more than Lambda's 6 MB (or something that is not JSON): the Lambda
  service fails the invocation, Firehose retries it, and after the last retry every record goes to the error
  output as ``Lambda.FunctionError``.
* The answer breaks the contract (:func:`pipeline.local.contract.contract_problems`): the whole batch goes to the
  error output at once: ``Lambda.MissingRecordId`` (a recordId missing or unknown),
  ``Lambda.DuplicatedRecordId``, or ``Lambda.JsonProcessingException`` (an invalid result or data, or
  partition keys the S3 prefix needs but the answer lacks).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from ..records import OK
from .contract import contract_problems, runtime_size

__all__ = ["FUNCTION_ERROR", "FUNCTION_FAILED", "Failure", "verdict"]

FUNCTION_ERROR = "The Lambda function was successfully invoked but it returned an error result."
_BAD_RESPONSE = {
    "Lambda.MissingRecordId": "One or more record Ids were not returned. Ensure that the Lambda function returns "
    "all received record Ids.",
    "Lambda.DuplicatedRecordId": "One or more record Ids were returned more than once.",
    "Lambda.JsonProcessingException": "The Lambda function returned a response that is not a valid "
    "transformation result.",
}


class Failure(NamedTuple):
    """Why Firehose does not accept an invocation, and whether it retries it."""

    code: str
    message: str
    retried: bool


#: The failure of an invocation whose function raised.
FUNCTION_FAILED = Failure("Lambda.FunctionError", FUNCTION_ERROR, retried=True)


def verdict(event: Mapping[str, Any], response: Any, limit: int, prefix_keys: Collection[str] = ()) -> Failure | None:
    """None if Firehose accepts *response* to *event*; else why not (*prefix_keys*: keys the S3 prefix uses).

    >>> event = {"records": [{"recordId": "a", "data": "eA=="}, {"recordId": "b", "data": "eA=="}]}
    >>> a, b = ({"recordId": i, "result": "Dropped"} for i in "ab")
    >>> verdict(event, {"records": [a, b]}, 999)
    >>> verdict(event, {"records": [a]}, 999).code, verdict(event, {"records": [a, a]}, 999).code
    ('Lambda.MissingRecordId', 'Lambda.DuplicatedRecordId')
    >>> verdict(event, {"records": [a, b]}, 10)
    Failure(code='Lambda.FunctionError', message='... (response is 93 bytes, over 10)', retried=True)
    """
    try:
        size = runtime_size(response)  # serialised as the Lambda runtime does (a lone surrogate cannot be sent)
    except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
        size = None
    if size is None or size > limit:  # the Lambda service itself fails such an invocation
        what = "cannot be serialised and sent" if size is None else f"is {size:,} bytes, over {limit:,}"
        return Failure("Lambda.FunctionError", f"{FUNCTION_ERROR} (response {what})", retried=True)
    problems = contract_problems(event, response, limit)
    if not problems:
        problems = _missing_keys(response, frozenset(prefix_keys))
    if not problems:
        return None
    entries = response.get("records") if isinstance(response, Mapping) else None
    ids = [e.get("recordId") for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else None
    if ids is not None and len(set(ids)) < len(ids):
        code = "Lambda.DuplicatedRecordId"
    elif ids is not None and set(ids) != {r["recordId"] for r in event["records"]}:
        code = "Lambda.MissingRecordId"
    else:
        code = "Lambda.JsonProcessingException"
    return Failure(code, f"{_BAD_RESPONSE[code]} ({'; '.join(problems[:3])})", retried=False)


def _missing_keys(response: Mapping[str, Any], names: frozenset[str]) -> list[str]:
    problems = []
    for i, entry in enumerate(response["records"]):
        keys = (entry.get("metadata") or {}).get("partitionKeys") or {}
        if entry["result"] == OK and not names <= keys.keys():
            problems.append(f"records[{i}] has no partition keys {sorted(names - keys.keys())} for the prefix")
    return problems
