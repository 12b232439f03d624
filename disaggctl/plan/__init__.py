"""``python -m disaggctl plan``: size deployments for their workload and SLO; the forecast synth prints.

``cli`` is the command; ``perf_model`` the seam to NVIDIA AIConfigurator (``aic_runner`` runs in its own
venv); ``pricing`` the price and availability tables; ``cost`` the one cost model (whole nodes, expected
and worst case, $/Mtok at the target rate) plan, synth and the PR comment share; ``forecast`` what a
deployment should deliver, from the stack file alone; ``stack_edit`` the in-place ``--write``; ``plot``
the Pareto frontier.
"""
