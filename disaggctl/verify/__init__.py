"""Post-deploy verification of a disaggregated TensorRT-LLM deployment.

* :mod:`.endpoints`: endpoints from flags or ``pulumi stack output --json`` (key names there);
* :mod:`.health`: server live/ready and model ready on every tier, as a PASS/FAIL table;
* :mod:`.generate`: one streaming generate over gRPC with per-token timing;
* :mod:`.loadtest`: a bounded load test (TTFT, inter-token latency, tokens/s) and its JSON report;
* :mod:`.stats`: percentiles;
* :mod:`.fabric`: the NCCL fabric-check Job manifest; :mod:`.nccl_log`: its log parser;
* :mod:`.cli`: ``verify`` and ``fabric-check`` subcommands (``python -m disaggctl.verify``).

Nothing here imports Pulumi; tritonclient is imported only by the functions that talk to Triton.
"""
