"""TensorRT-LLM engine specifications, model catalog and the in-container build entrypoint.

Nothing in this package imports pulumi or tensorrt_llm at import time: the build entrypoint
runs inside the TRT-LLM container, the specs are used by the Pulumi program.
"""
