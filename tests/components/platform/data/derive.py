"""Derive the key tables and CRD schemas in this folder from upstream files (run by hand).

``python tests/components/platform/data/derive.py values <repo> <commit> <path> <chart> <version> <out>``
writes a key table (every key path of a chart's values.yaml with the kind of its default, the
derivation in tests/components/platform/conftest.py::key_paths);
``python tests/components/platform/data/derive.py crd <repo> <commit> <path> <version> <out>`` writes the
``openAPIV3Schema`` of one served version of a CRD with ``description`` fields removed.
Input is read from stdin (e.g. ``git show <commit>:<path> | python derive.py …``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[4])]
from conftest import key_paths  # noqa: E402


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main(argv: list[str]) -> None:
    kind, repo, commit, path = argv[:4]
    source = {"repository": repo, "commit": commit, "path": path}
    text = sys.stdin.read()
    if kind == "values":
        chart, version, out = argv[4:7]
        document = {"chart": chart, "version": version, "derivedFrom": source,
                    "paths": key_paths(yaml.safe_load(text) or {})}
    else:
        version, out = argv[4:6]
        crd = yaml.safe_load(text)
        (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
        document = {"derivedFrom": source, "group": crd["spec"]["group"], "kind": crd["spec"]["names"]["kind"],
                    "version": version, "openAPIV3Schema": _strip(entry["schema"]["openAPIV3Schema"])}
    Path(out).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
