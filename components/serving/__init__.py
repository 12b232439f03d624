"""Serving layer: the tiers of a model deployment and the deployments that compose them.

Deployments (one per runtime): ``deployment`` (``runtime: engine``: Triton + TRT-LLM engines) and
``llmapi_deployment`` (``runtime: llmapi``: trtllm-serve). Tiers: ``triton_frontend``,
``triton_orchestrator``, ``triton_workers`` (engine); ``llmapi_frontend``, ``llmapi_router``,
``llmapi_workers``, ``runtime_package`` (llmapi). Shared pieces, named for what they build:
``labels``, ``pods``, ``probes``, ``resources``, ``security``, ``fabric_env``, ``mpi_ssh``,
``group_layout``, ``autoscaling``, ``scaled_objects`` (KEDA, preStop drain), ``network_policies``,
``load_balancer``, ``cpu_tier``,
``repository_config_maps``, ``pulumi_options``; ``model_repository/`` is the Triton repository.
"""
