"""Pulumi ComponentResources for disaggregated LLM inference on Kubernetes."""
