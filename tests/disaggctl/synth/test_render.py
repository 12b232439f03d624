"""The synth's JSON and YAML writers are byte-identical to ``json.dumps`` and PyYAML (hypothesis).

Every shipped stack's documents are compared as well, in test_fast_paths.py (they need its recording).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disaggctl.synth.render import ManifestDumper, to_json, to_manifest_yaml

_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_UNICODE = st.characters(codec="utf-8", exclude_categories=("Cs",))
# mostly what manifests hold (printable ASCII and newlines: the fast path), sometimes anything
_KEY = st.text(_ASCII, max_size=12) | st.text(_ASCII, min_size=95, max_size=135) | st.text(_UNICODE, max_size=6)
_SCALAR = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(_ASCII | st.just("\n"), max_size=60) | st.text(_ASCII | st.just("\n"), min_size=90, max_size=240)
    | st.text(_UNICODE, max_size=20)
    | st.sampled_from(["", "yes", "no", "on", "null", "~", "1.0", "0x1f", "- a", "a: b", "#x", "a\nb", "a \nb",
                       "trailing \n", "\ttab", "line\n\n", "  lead\nx", "k8s.io/x", "'q'", '"d"', "*a", "&a", "!t",
                       "x" * 150, "word " * 40, "é\nü", "\u2028x"])
)
_VALUES = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEY, inner, max_size=4),
                       max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES)
def test_json_matches_json_dumps(value: object) -> None:
    assert to_json(value) == json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEY, _VALUES, max_size=5))
def test_manifest_yaml_matches_pyyaml(manifest: dict) -> None:
    expected = yaml.dump(manifest, Dumper=ManifestDumper, sort_keys=True, default_flow_style=False, width=100)
    assert to_manifest_yaml(manifest) == expected


def test_shared_objects_and_odd_values_fall_back_to_the_libraries() -> None:
    shared = {"app": "x"}
    manifest = {"a": shared, "b": shared, "c": (1, 2), "d": math.pi}
    assert to_manifest_yaml(manifest) == yaml.dump(
        manifest, Dumper=ManifestDumper, sort_keys=True, default_flow_style=False, width=100
    )
    document = {"path": Path("/x"), "t": (1, 2), "n": {"1": 1.5}}
    assert to_json(document) == json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
