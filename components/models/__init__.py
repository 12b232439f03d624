"""Model layer: what puts servable model artefacts into the shared store (engine builds)."""
