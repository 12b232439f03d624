"""The one error type of configuration problems, and how values are shown in its messages.

Messages are bounded: a value is shown truncated (a pasted 10 MB string is not echoed back), and
a whole problem line never exceeds :data:`MAX_PROBLEM_CHARS`, keeping its start (the key) and
its end (the fix).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_VALUE_CHARS = 60
"""Characters of a value shown in a message before it is cut (``…(N chars)``)."""
MAX_PROBLEM_CHARS = 800
"""Longest problem line; longer ones lose their middle (the longest message this project writes,
the engine runtime's prefill-decode refusal with its upstream sources, is under 600)."""
MAX_PROBLEMS = 50
"""Problems listed at most (the rest are counted)."""

_QUOTED = re.compile("'([^'\\s]{" + str(MAX_VALUE_CHARS + 1) + ",})'")


def truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} chars)"


def shown(value: Any) -> str:
    """A value as a message shows it: JSON for scalars, the type name for containers, truncated."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return truncate(json.dumps(value, ensure_ascii=False))
    return type(value).__name__


def clip(problem: str) -> str:
    """``problem`` with long quoted values truncated, then at most MAX_PROBLEM_CHARS long."""
    problem = _QUOTED.sub(lambda m: f"'{truncate(m.group(1))}'", problem)
    problem = " ".join(problem.split()) if "\n" in problem else problem
    if not problem.isprintable():  # control characters from a pasted value: shown escaped
        problem = "".join(c if c.isprintable() else repr(c)[1:-1] for c in problem)
    if len(problem) <= MAX_PROBLEM_CHARS:
        return problem
    head, tail = MAX_PROBLEM_CHARS * 2 // 3, MAX_PROBLEM_CHARS // 3 - 5
    return f"{problem[:head]} … {problem[-tail:]}"


class ConfigError(ValueError):
    """The stack configuration (or ``what``: a component's arguments) is invalid; ``problems``
    holds one message per problem."""

    def __init__(self, problems: list[str], what: str = "stack configuration"):
        clipped = [clip(p) for p in problems]
        self.problems = clipped
        count = f"{len(clipped)} problem{'s' if len(clipped) != 1 else ''}"
        listed = clipped[:MAX_PROBLEMS]
        more = [f"… and {len(clipped) - MAX_PROBLEMS} more"] if len(clipped) > MAX_PROBLEMS else []
        super().__init__(
            f"invalid {what} ({count}):\n" + "\n".join(f"  - {p}" for p in [*listed, *more])
        )
