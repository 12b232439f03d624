"""How long serving pods wait, drain and exit when told to stop (preStop, terminationGracePeriodSeconds).

The drain itself (the longest stream of a deployment) is computed from the configuration by
``components.config.capacity.deployment_drain_seconds``; this module adds the serving tiers' own waits.
"""

from __future__ import annotations

ENDPOINT_REMOVAL_S = 10
"""preStop wait before a pod stops accepting: the EndpointSlice controller, kube-proxy, the NLB's
target deregistration and the router's DNS refresh (2 s) drop a terminating pod within it."""


PROCESS_EXIT_S = 15
"""Grace left after the drain for the process to exit (closing connections, MPI teardown)."""


def cpu_tier_grace_seconds(drain_seconds: int, drain_delay_s: int = 0) -> int:
    """terminationGracePeriodSeconds of a frontend or router pod: the preStop wait for endpoint
    removal, the process's readiness-off delay after SIGTERM (``--drain-delay``; 0 by default, the
    preStop wait already took the pod out of the endpoints), the drain of its streams (the process's
    ``--shutdown-timeout``), then the exit."""
    return ENDPOINT_REMOVAL_S + drain_delay_s + drain_seconds + PROCESS_EXIT_S


def worker_prestop_seconds(drain_seconds: int) -> int:
    """preStop sleep of a worker-group leader: the router drops it from discovery within
    ENDPOINT_REMOVAL_S, then the streams it already has run to their end while it still serves."""
    return ENDPOINT_REMOVAL_S + drain_seconds


def worker_grace_seconds(drain_seconds: int) -> int:
    """terminationGracePeriodSeconds of a worker-group pod: its preStop, then the server's exit."""
    return worker_prestop_seconds(drain_seconds) + PROCESS_EXIT_S
