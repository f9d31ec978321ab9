"""Batches of problems as JSON lines: the worker side of `scsp solve --batch` (pure).

`solve_lines` takes numbered lines of a PROBLEMS.jsonl file (each one problem in the `scsp solve`
contract, `decode_problem`) and answers every line with one JSON document: the plan
(`encode_plan`) or, for a line that is not a valid problem, an error object naming the line::

    {"error": {"line": 7, "message": "sessions[3].departure_slot: must be after arrival_slot=0, got -4"}}

It is a module-level function of an importable module so that worker processes and Dask workers
load it by name; its arguments and result are plain bytes, ints and a `SolveOptions` Struct, so they
travel msgspec-encoded.
"""

from __future__ import annotations

import msgspec

from optimizer.io import decode_problem, encode_plan
from optimizer.model import ProblemError, SolveOptions
from optimizer.solve import solve

__all__ = ["error_line", "solve_lines"]


class _Error(msgspec.Struct, frozen=True):
    line: int
    message: str


class _ErrorLine(msgspec.Struct, frozen=True):
    error: _Error


_encode = msgspec.json.Encoder().encode


def error_line(line: int, message: str) -> bytes:
    """The error object answering line `line` (1-based), as JSON bytes without a newline."""
    return _encode(_ErrorLine(_Error(line, message)))


def solve_lines(lines: list[tuple[int, bytes]], options: SolveOptions) -> list[bytes]:
    """One JSON document per `(line number, problem JSON)`: the plan, or the line's error object.

    A malformed problem (`ProblemError`) is answered on its own line; the other lines are still
    planned. `solve` returns a plan for every valid problem (its own fallback covers the solver).
    """
    out = []
    for number, text in lines:
        try:
            problem = decode_problem(text)
        except ProblemError as exc:
            out.append(error_line(number, str(exc)))
            continue
        out.append(encode_plan(solve(problem, options)))
    return out
