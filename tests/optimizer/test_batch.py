"""`optimizer.batch` and the batch framing, in process: every line answered, in order, errors on
exactly the malformed lines (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import SolveOptions, decode_plan, decode_problem
from optimizer.batch import error_line, solve_lines
from scsp.cli.batch import chunks, read_lines
from tests.optimizer.support import CONTRACT_EXAMPLE, with_change

VALID = [json.dumps(CONTRACT_EXAMPLE).encode(), with_change("site.limit_kw", 7.5), with_change("n_slots", 12)]
MALFORMED = [b"", b"{", b"[]", b"null", b'{"start": 1}', with_change("site.limit_kw", float("nan")),
             with_change("sessions[0].departure_slot", -4), "{\"start\": \"\u00e9\"}".encode()]
PLANS = {line: decode_plan(solve_lines([(1, line)], SolveOptions())[0]) for line in VALID}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([*VALID, *MALFORMED]), max_size=12), st.integers(1, 4))
def test_every_line_gets_one_answer_and_errors_fall_on_the_malformed_lines(lines: list[bytes], workers: int) -> None:
    numbered = read_lines(b"\n".join(lines) + (b"\n" if lines else b""))
    assert numbered == list(enumerate(lines, start=1))
    answers = [a for part in chunks(numbered, workers) for a in solve_lines(part, SolveOptions())]
    assert len(answers) == len(lines)
    for number, (line, answer) in enumerate(zip(lines, answers, strict=True), start=1):
        document = json.loads(answer)
        if line in MALFORMED:
            assert set(document) == {"error"} and document["error"]["line"] == number
            assert isinstance(document["error"]["message"], str) and document["error"]["message"]
        else:
            decode_problem(line)
            assert decode_plan(answer).objective == PLANS[line].objective


def test_an_error_line_is_one_json_object_whatever_the_message() -> None:
    text = error_line(7, 'quote " and newline \n and \u00e9')
    assert b"\n" not in text
    assert json.loads(text) == {"error": {"line": 7, "message": 'quote " and newline \n and \u00e9'}}
