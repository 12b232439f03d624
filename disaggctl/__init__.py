"""Command-line tools: offline synth of a stack, post-deploy verification."""
