"""``python -m disaggctl synth`` and ``synth-diff``: the offline, deterministic preview of a stack.

``program`` runs the Pulumi program under the recording mocks (``disaggctl.testing``) and writes what it
declares; ``render`` writes its JSON/YAML fast and byte-identical to the libraries; ``diff`` compares two
synth outputs for a pull request; ``fast_registration`` is the synth's faster registration path.
"""
