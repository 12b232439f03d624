"""Fixtures for engine tests: upstream flag tables as parsers."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


class _Raise(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would sys.exit; tests want the message
        raise ValueError(message)


def flag_parser(table: str) -> argparse.ArgumentParser:
    """An argparse parser rebuilt from a ``data/*_flags.txt`` table of upstream flags."""
    parser = _Raise(prog=table, add_help=False, allow_abbrev=False)
    for line in (DATA / table).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        flag, kind, *rest = line.split()
        if kind == "int":
            parser.add_argument(flag, type=int)
        elif kind == "str":
            parser.add_argument(flag, type=str)
        elif kind == "choice":
            parser.add_argument(flag, choices=rest[0].split(","))
        elif kind == "store_true":
            parser.add_argument(flag, action="store_true")
        elif kind == "nargs+":
            parser.add_argument(flag, nargs="+")
        else:
            raise AssertionError(f"{table}: unknown kind {kind!r} in {line!r}")
    return parser


@pytest.fixture
def parse_flags():
    """``parse_flags(table, argv)``: parse ``argv`` as upstream would (ValueError if it would refuse)."""

    def parse(table: str, argv: list[str]) -> argparse.Namespace:
        return flag_parser(table).parse_args(argv)

    return parse
