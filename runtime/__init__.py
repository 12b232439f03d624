"""Serving processes of the ``llmapi`` runtime (docs/llmapi-runtime.md).

``python -m runtime.frontend`` (OpenAI + KServe v2 HTTP, tokenization), ``python -m runtime.router``
(worker discovery, least-outstanding routing, prefill-decode handoff) and ``python -m
runtime.standin`` (a CPU stand-in for ``trtllm-serve``, tests and benchmarks only). Standard
library + aiohttp only (``transformers`` when a real tokenizer is asked for): the package ships
to pods in a ConfigMap and runs from ``PYTHONPATH``.
"""
