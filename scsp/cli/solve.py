"""`scsp solve PROBLEM.json [--out PLAN.json]`: plan one site from a JSON problem, offline.

The I/O shell around the pure `optimizer` package: read the problem file, decode and validate it
(`optimizer.decode_problem`), solve, and write the plan as JSON to stdout or `--out`.

Exit codes: 0 a plan was written (whatever its status: OPTIMAL, FEASIBLE or FALLBACK; warnings
such as a fixed load above the limit are in the plan's `warnings`), 2 the problem is malformed or
unreadable (one line on stderr naming the field, e.g. `sessions[3].departure_slot: ...`). With
`--profiles` that includes a `slot_minutes` that is not a whole number of seconds (a profile's
`start_period` is an integer), checked before solving.

`--batch PROBLEMS.jsonl` plans a file of problems, one per line, in parallel (`scsp.cli.batch`).

`scsp.cli` calls `register(subparsers)`; `python -m scsp.cli.solve PROBLEM.json` runs the same
command without the rest of the CLI.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from optimizer import Plan, ProblemError, SiteProblem, SolveOptions, decode_problem, encode_plan, solve
from profiles.model import ProfileSettings
from profiles.whatif import slot_seconds, whatif_profiles
from scsp.cli import batch

__all__ = ["main", "register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `solve` sub-command to the `scsp` parser (its handler is `run`)."""
    parser = subparsers.add_parser(
        "solve",
        help="plan one site from a JSON problem (the optimizer, offline)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `solve` arguments. Output options (such as per-session profiles) are added here too."""
    parser.add_argument("problem", type=Path, nargs="?", metavar="PROBLEM.json", help="the site problem (JSON)")
    parser.add_argument("--out", type=Path, metavar="PLAN.json", help="write the plan here instead of stdout")
    parser.add_argument(
        "--profiles",
        action="store_true",
        help="add to each session the OCPI ChargingProfile that would be sent for it",
    )
    parser.add_argument("--max-periods", type=int, default=None,
                        help=f"with --profiles: most periods per profile (default: {ProfileSettings().max_periods})")
    parser.add_argument("--failsafe-delay-s", type=int, default=None,
                        help="with --profiles: seconds from the start to the failsafe tail "
                        f"(default: {ProfileSettings().failsafe_delay_s})")
    parser.set_defaults(check=check)
    parser.add_argument(
        "--milp-time-limit-s",
        type=float,
        default=SolveOptions().milp_time_limit_s,
        help="time budget of the minimum-rate MILP in seconds (default: %(default)s)",
    )
    batch.add_arguments(parser)


def check(args: argparse.Namespace) -> str | None:
    """An option that means nothing without another says so (the parser reports it, exit 2)."""
    if not getattr(args, "profiles", False):
        alone = [name for name, value in (("--max-periods", args.max_periods),
                                          ("--failsafe-delay-s", args.failsafe_delay_s)) if value is not None]
        if alone:
            return f"{' and '.join(alone)} {'needs' if len(alone) == 1 else 'need'} --profiles"
    return None


# Decimals of each unit in what `solve` writes: W to whole watts, kW to 0.01 (10 W), kWh to 0.001 (1 Wh),
# grams of CO2 whole, cost to the cent.
# Solver figures carry float noise (6.859999999999999 kW) that means nothing; seconds and ratios stay.
UNIT_DECIMALS = (("_kwh", 3), ("_kw", 2), ("_w", 0), ("co2_g", 0), ("cost", 2))


def rounded(value: Any, decimals: int | None = None) -> Any:
    """A JSON document with every number under a `*_kw`, `*_kwh` or `*_w` key rounded to its unit's meaning."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            places = next((d for suffix, d in UNIT_DECIMALS if str(key).endswith(suffix)), None)
            out[key] = rounded(item, places)
        return out
    if isinstance(value, list):
        return [rounded(item, decimals) for item in value]
    if decimals is not None and isinstance(value, float) and math.isfinite(value):
        result = round(value, decimals)
        return int(result) if decimals == 0 else result + 0.0  # + 0.0: no -0.0
    return value


def render(args: argparse.Namespace, problem: SiteProblem, plan: Plan) -> bytes:
    """The bytes `scsp solve` writes for a solved problem: the plan as JSON.

    With `--profiles` every session also carries `charging_profile`: the exact OCPI ChargingProfile
    the service would send for it (`profiles.whatif`: the EVSE's phases, AC unless `"dc": true`,
    `site.voltage_v`, the failsafe tail from `site.failsafe_kw` or its documented default), with
    `start_date_time` = the problem's `start`. The plan's own fields stay unchanged.
    """
    document = rounded(msgspec.json.decode(encode_plan(plan)))
    if getattr(args, "profiles", False):
        defaults = ProfileSettings()
        settings = ProfileSettings(
            max_periods=defaults.max_periods if args.max_periods is None else args.max_periods,
            failsafe_delay_s=defaults.failsafe_delay_s if args.failsafe_delay_s is None else args.failsafe_delay_s)
        built = {p.id: p.charging_profile for p in whatif_profiles(problem, plan, settings=settings)}
        for session in document["sessions"]:
            # The profile as sent: the builder already rounds its limits (down, one decimal).
            session["charging_profile"] = msgspec.to_builtins(built[session["id"]])
    return msgspec.json.encode(document) + b"\n"


def run(args: argparse.Namespace) -> int:
    """Run `scsp solve`. Returns 0 when a plan was written, 2 for a malformed or unreadable problem.

    A problem `--profiles` cannot turn into profiles (its slot length is not whole seconds) is
    malformed for this run: 2, before any solving.
    """
    if getattr(args, "batch", None) is not None:
        return batch.run(args)
    if args.problem is None:
        print("scsp solve: give PROBLEM.json (or --batch PROBLEMS.jsonl)", file=sys.stderr)
        return 2
    try:
        data = args.problem.read_bytes()
    except OSError as exc:
        print(f"scsp solve: cannot read {args.problem}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        problem = decode_problem(data)
    except ProblemError as exc:
        print(f"scsp solve: {args.problem}: {exc}", file=sys.stderr)
        return 2
    if not args.milp_time_limit_s > 0:
        print("scsp solve: --milp-time-limit-s must be > 0", file=sys.stderr)
        return 2
    if getattr(args, "profiles", False):
        if (args.max_periods is not None and args.max_periods < 1) or \
                (args.failsafe_delay_s is not None and args.failsafe_delay_s < 0):
            print("scsp solve: --max-periods must be >= 1 and --failsafe-delay-s >= 0", file=sys.stderr)
            return 2
        try:
            slot_seconds(problem)  # before solving: `render` would otherwise fail after the solve
        except ProblemError as exc:
            print(f"scsp solve: {args.problem}: {exc}", file=sys.stderr)
            return 2
    plan = solve(problem, msgspec.structs.replace(SolveOptions(), milp_time_limit_s=args.milp_time_limit_s))
    output = render(args, problem, plan)
    if args.out is None:
        sys.stdout.buffer.write(output)
        sys.stdout.flush()
    else:
        try:
            args.out.write_bytes(output)
        except OSError as exc:
            print(f"scsp solve: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    for warning in plan.warnings:
        print(f"scsp solve: warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `solve` as a stand-alone command (`python -m scsp.cli.solve PROBLEM.json`)."""
    parser = argparse.ArgumentParser(prog="scsp")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["solve", *(sys.argv[1:] if argv is None else argv)])
    problem = check(args)
    if problem is not None:
        parser.error(problem)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
