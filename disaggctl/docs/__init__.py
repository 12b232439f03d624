"""``python -m disaggctl docs``: the configuration reference and the stack schema, generated."""
