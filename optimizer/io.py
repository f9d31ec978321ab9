"""JSON bytes <-> Structs for `scsp solve` and tools: the problem in, the plan out. No files here.

`decode_problem` turns every decoding or validation failure into one `ProblemError` whose `path`
is the offending field in the JSON (`sessions[3].departure_slot`), so a caller can print it as is.
That includes the `NaN`, `Infinity` and `-Infinity` literals Python's `json.dump` writes by default:
they are not JSON (RFC 8259 section 6), so msgspec stops at them with only a byte offset, and the
error names the field that holds the first of them instead (`site.limit_kw: NaN is not a finite
number`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from optimizer.model import Plan, ProblemError, SiteProblem
from optimizer.validate import validate_problem

__all__ = ["decode_plan", "decode_problem", "encode_plan"]

_problem_decoder = msgspec.json.Decoder(SiteProblem)
_plan_decoder = msgspec.json.Decoder(Plan)
_encoder = msgspec.json.Encoder()

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<field>[^`]+)`")


def _error_from_msgspec(error: msgspec.ValidationError) -> ProblemError:
    """Translate msgspec's message (`... - at `$.a[0].b``) into a ProblemError with a plain path."""
    match = _AT.match(str(error))
    message = match.group("message") if match else str(error)
    path = (match.group("path") or "") if match else ""
    path = path.lstrip(".")
    field = _FIELD.search(message)
    if field:  # the path names the object; point at the field itself
        path = f"{path}.{field.group('field')}" if path else field.group("field")
    return ProblemError(path or "$", message[:1].lower() + message[1:])


class _NonFinite:
    """Stands in for a `NaN`/`Infinity`/`-Infinity` literal while the JSON is searched for one."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class _Members(list[tuple[str, Any]]):
    """A JSON object's members in document order (duplicates kept, so none is skipped)."""


def _first_non_finite(value: Any, path: str) -> tuple[str, str] | None:
    """The path and literal of the first non-finite number in `value`, depth first in document order."""
    if isinstance(value, _NonFinite):
        return path, value.literal
    if isinstance(value, _Members):
        for key, member in value:
            found = _first_non_finite(member, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _non_finite_error(data: bytes | str) -> ProblemError | None:
    """A ProblemError naming the field of the first `NaN`/`Infinity` literal, or None if there is none.

    Only called after msgspec refused the text: the standard library accepts these literals
    (`parse_constant`), so its parse of text that is otherwise valid JSON locates them.
    """
    try:
        document = json.loads(data, parse_constant=_NonFinite, object_pairs_hook=_Members)
    except (ValueError, RecursionError):  # malformed beyond the literals (ValueError: also bad UTF-8)
        return None
    found = _first_non_finite(document, "")
    if found is None:
        return None
    path, literal = found
    return ProblemError(path or "$", f"{literal} is not a finite number")


def decode_problem(data: bytes | str) -> SiteProblem:
    """Decode and validate a problem from JSON.

    Args:
        data: The JSON text of one problem (the `scsp solve` contract).

    Returns:
        The validated problem.

    Raises:
        ProblemError: Malformed JSON, a `NaN`/`Infinity`/`-Infinity` literal, a missing, unknown or
            wrongly typed field, or a value that fails `validate_problem`; `path` names the field
            (`$` for JSON that is malformed elsewhere).
    """
    try:
        problem = _problem_decoder.decode(data)
    except msgspec.ValidationError as error:
        raise _error_from_msgspec(error) from None
    except msgspec.DecodeError as error:
        raise _non_finite_error(data) or ProblemError("$", f"not valid JSON: {error}") from None
    validate_problem(problem)
    return problem


def encode_plan(plan: Plan) -> bytes:
    """The plan as JSON bytes (field order: the contract's fields first)."""
    return _encoder.encode(plan)


def decode_plan(data: bytes | str) -> Plan:
    """Read back a plan written by `encode_plan` (golden tests, tools)."""
    return _plan_decoder.decode(data)
