"""JSON bytes <-> Structs for `scsp solve` and tools: the problem in, the plan out. No files here.

`decode_problem` turns every decoding or validation failure into one `ProblemError` whose `path`
is the offending field in the JSON (`sessions[3].departure_slot`), so a caller can print it as is.
"""

from __future__ import annotations

import re

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


def decode_problem(data: bytes | str) -> SiteProblem:
    """Decode and validate a problem from JSON.

    Args:
        data: The JSON text of one problem (the `scsp solve` contract).

    Returns:
        The validated problem.

    Raises:
        ProblemError: Malformed JSON, a missing, unknown or wrongly typed field, or a value that
            fails `validate_problem`; `path` names the field.
    """
    try:
        problem = _problem_decoder.decode(data)
    except msgspec.ValidationError as error:
        raise _error_from_msgspec(error) from None
    except msgspec.DecodeError as error:
        raise ProblemError("$", f"not valid JSON: {error}") from None
    validate_problem(problem)
    return problem


def encode_plan(plan: Plan) -> bytes:
    """The plan as JSON bytes (field order: the contract's fields first)."""
    return _encoder.encode(plan)


def decode_plan(data: bytes | str) -> Plan:
    """Read back a plan written by `encode_plan` (golden tests, tools)."""
    return _plan_decoder.decode(data)
