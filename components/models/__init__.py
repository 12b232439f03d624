"""Model layer: what puts servable model artefacts into the shared store (model preparation for
the llmapi runtime, engine builds for the engine runtime); ``job_pods`` is what their Jobs share
(token as a file, restricted pods, DNS + HTTPS egress only)."""
