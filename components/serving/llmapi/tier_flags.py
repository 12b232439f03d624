"""The serving flags of the llmapi frontend and router (``runtime/serve.py`` add_serving_flags).

Resolved per deployment by ``components.config.serving_tiers.resolve_tiers``; rendered here in the
order ``add_serving_flags`` declares them. ``--shutdown-timeout`` is not among them: it is the
deployment's drain (``drain_seconds``), rendered by each tier next to its other lifecycle values.
"""

from __future__ import annotations

import math

from components.config.serving_tiers import TierSettings


def seconds(value: float) -> str:
    """``30``, ``2.5``: what argparse's ``type=float`` reads back as the same value."""
    return f"{value:g}"


def serving_flags(settings: TierSettings | None) -> list[str]:
    """The flags of ``settings`` (None: none, the process's defaults apply)."""
    if settings is None:
        return []
    s = settings
    return [
        "--connect-timeout", seconds(s.connect_timeout),
        "--first-byte-timeout", seconds(s.first_byte_timeout),
        "--idle-timeout", seconds(s.idle_timeout),
        "--request-timeout", seconds(s.request_timeout),
        "--max-inflight", str(s.max_inflight),
        "--max-queue", str(s.max_queue),
        "--queue-timeout", seconds(s.queue_timeout),
        "--header-timeout", seconds(s.header_timeout),
        "--body-timeout", seconds(s.body_timeout),
        "--drain-delay", seconds(s.drain_delay),
    ]  # fmt: skip


def grace_drain_delay(settings: TierSettings | None) -> int:
    """Whole seconds of ``--drain-delay`` the pod's terminationGracePeriodSeconds adds. None: 0, the
    process's default (``runtime/serve.py`` DRAIN_DELAY_S, 3 s) fits in ``drain.PROCESS_EXIT_S``."""
    return 0 if settings is None else math.ceil(settings.drain_delay)
