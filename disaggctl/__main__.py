"""``python -m disaggctl``: offline synth of a stack, synth diffs for PR previews, SLO planning, post-deploy verification."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from pydantic import ValidationError

from components.config.errors import ConfigError
from disaggctl.docs.reference import add_docs_command
from disaggctl.plan.cli import add_plan_command
from disaggctl.synth.diff import add_diff_commands
from disaggctl.synth.first_apply import add_first_apply_command
from disaggctl.verify.cli import add_verify_commands


def _synth(args: argparse.Namespace) -> int:
    from disaggctl.synth.program import SynthError, render_result_summary, synthesize

    project_dir = Path(args.project).resolve()
    out_dir = Path(args.out or f"build/synth/{args.stack}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = synthesize(project_dir, args.stack, out_dir)
    except ConfigError as err:
        print(f"synth of stack '{args.stack}' failed: {err}", file=sys.stderr)
        return 2
    except SynthError as err:
        print(f"synth failed: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:  # a component's typed arguments refused: one line per problem
        print(f"synth of stack '{args.stack}' failed: {ConfigError(argument_problems(err), f'{err.title} arguments')}",
              file=sys.stderr)
        return 2
    except Exception as err:  # the program raised: show where, then fail
        traceback.print_exc()
        print(f"synth of stack '{args.stack}' failed: the program raised {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(render_result_summary(result), end="")
    for forecast in result.forecasts:
        for problem in forecast.problems:
            print(f"warning: {problem}", file=sys.stderr)
    print(f"wrote {len(result.resources)} resources of stack '{args.stack}' to {out_dir}")
    return 0


def argument_problems(err: ValidationError) -> list[str]:
    """The problems of a pydantic refusal: those of a ConfigError raised in a validator, else
    ``key: message`` per error."""
    problems: list[str] = []
    for error in err.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            problems += cause.problems
        else:
            key = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{key}: {message}" if key else message)
    return problems


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disaggctl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="render every resource of a stack offline, deterministically")
    synth.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    synth.add_argument("--out", help="output directory (default build/synth/<stack>)")
    synth.add_argument("--project", default=".", help="project directory holding Pulumi.yaml (default .)")
    synth.set_defaults(func=_synth)
    add_diff_commands(commands)
    add_first_apply_command(commands)
    add_plan_command(commands)
    add_docs_command(commands)
    add_verify_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


_EXIT_WITHOUT_TEARDOWN = {"synth"}
"""Commands after which the interpreter exits without tearing down its objects: a synth leaves a
few hundred thousand of them (the program's resources and Outputs), and freeing them one by one
takes longer than rendering them (1-2 s here). Their files are closed and complete by then; they
register no exit handlers that matter (checked: the SDK's and the thread pools' are idle)."""


if __name__ == "__main__":
    code = main()
    if sys.argv[1:2] and sys.argv[1] in _EXIT_WITHOUT_TEARDOWN:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
