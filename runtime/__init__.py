"""Serving processes of the ``llmapi`` runtime (docs/llmapi-runtime.md).

``python -m runtime.frontend`` (OpenAI + KServe v2 HTTP, tokenization), ``python -m runtime.router``
(worker discovery, least-outstanding routing, prefill-decode handoff) and ``python -m
runtime.standin`` (a CPU stand-in for ``trtllm-serve``, tests and benchmarks only). Standard
library + aiohttp only (``transformers`` when a real tokenizer is asked for): the package ships
to pods in a ConfigMap and runs from ``PYTHONPATH``.
"""

POD_FILES = ("__init__.py", "capabilities.py", "discovery.py", "frontend.py", "kv_routing.py", "limits.py", "metrics.py",
             "policy.py", "protocol.py", "router.py", "serve.py", "tokenizer.py", "upstream.py")
"""Files a pod needs (ConfigMap keys): mounted as ``<dir>/runtime/`` with ``PYTHONPATH=<dir>``, they
run ``python -m runtime.frontend`` and ``python -m runtime.router``. ``standin.py`` is left out
(tests and benchmarks only)."""

STANDIN_FILES = ("standin.py", "kv_cache_model.py")
"""The CPU stand-in for trtllm-serve and its KV-cache model: tests and benchmarks only, never shipped."""
