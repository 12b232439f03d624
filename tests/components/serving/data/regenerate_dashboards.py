"""Write the expected dashboard files (run by hand after a deliberate change, then review the diff):
``python -m tests.components.serving.data.regenerate_dashboards``."""

from __future__ import annotations

from pathlib import Path

from components.serving.dashboards import dashboard_json, deployment_dashboard

CASES = [
    ("llama-8b", "llm-dev", "llmapi", ["workers"]),
    ("llama-70b", "llm-prod", "llmapi", ["prefill", "decode"]),
    ("llama-8b-engine", "llm-prod", "engine", ["workers"]),
]

if __name__ == "__main__":
    for deployment, namespace, runtime, roles in CASES:
        path = Path(__file__).parent / f"dashboard-{deployment}.json"
        path.write_text(dashboard_json(deployment_dashboard(deployment, namespace, runtime, roles)))
        print(f"wrote {path}")
