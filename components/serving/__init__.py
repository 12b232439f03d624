"""Serving layer: the tiers of a model deployment, one sub-package per runtime.

``llmapi/`` (``runtime: llmapi``, trtllm-serve) and ``triton/`` (``runtime: engine``, Triton with
prebuilt engines). The pieces both use stay here, named for what they build: ``labels``, ``pods``,
``probes``, ``resources``, ``security``, ``fabric_env``, ``mpi_ssh``, ``group_layout``,
``autoscaling``, ``scaled_objects`` (KEDA, preStop drain), ``network_policies``, ``load_balancer``,
``cpu_tier``, ``repository_config_maps``, ``runtime_package``, ``pulumi_options``.
"""
