"""Pulumi ComponentResources for disaggregated LLM inference on Kubernetes, one package per layer.

``config`` (the typed stack configuration) → ``cluster`` → ``storage``, ``platform``, ``models`` →
``serving`` (shared pieces) → ``serving.llmapi`` and ``serving.triton`` (one room per runtime).
Imports point down only; ``tests/test_layout.py`` holds the table and checks it.
"""
