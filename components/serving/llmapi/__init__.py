"""The current runtime (``runtime: llmapi``): trtllm-serve worker groups, router and frontend.

``deployment`` composes the tiers (``workers``, ``router``, ``frontend``) from ``args``, the typed
adapter from the stack configuration; the tiers use the shared pieces of ``components.serving``.
"""
