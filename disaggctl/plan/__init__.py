"""``python -m disaggctl plan``: size deployments for their workload and SLO; the forecast synth prints.

``cli`` is the command; ``perf_model`` the seam to NVIDIA AIConfigurator (``aic_runner`` runs in its own
venv); ``pricing`` the price table; ``forecast`` what a deployment should deliver, from the stack file alone.
"""
