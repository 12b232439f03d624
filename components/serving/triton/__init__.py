"""The legacy engine runtime (``runtime: engine``): Triton + prebuilt TensorRT-LLM engines.

``deployment`` composes the tiers (``frontend``, ``orchestrator``, ``workers``); ``model_repository/``
renders the Triton model repositories they load. Shared pieces live in ``components.serving``.
"""
