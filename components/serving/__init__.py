"""Serving layer: frontend, orchestrator and worker tiers, and the deployment that composes them."""
