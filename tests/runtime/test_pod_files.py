"""The ConfigMap file list is complete: the tiers import from it alone, with no project package
and no third-party package but aiohttp."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import runtime

PROBE = """
import json, sys
import runtime.frontend, runtime.router
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


def test_tiers_import_from_the_pod_files_alone(tmp_path):
    pkg = tmp_path / "runtime"
    pkg.mkdir()
    src = Path(runtime.__file__).parent
    for name in runtime.POD_FILES:
        shutil.copy(src / name, pkg / name)
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + PROBE],
                         capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"components", "engines", "disaggctl", "pydantic", "numpy", "transformers", "pulumi"}
    third_party = {m for m in loaded if m not in sys.stdlib_module_names and not m.startswith("_")} - {"runtime"}
    assert "aiohttp" in third_party
    allowed = {"aiohttp", "multidict", "yarl", "frozenlist", "aiosignal", "attr", "propcache", "aiohappyeyeballs",
               "idna", "async_timeout", "typing_extensions", "uvloop", "brotli", "zstandard", "backports",
               "sitecustomize", "certifi", "cython_runtime"}
    assert third_party <= allowed, third_party - allowed


def test_pod_files_list_every_module_but_the_standin():
    src = Path(runtime.__file__).parent
    assert sorted(p.name for p in src.glob("*.py") if p.name not in runtime.STANDIN_FILES) == sorted(runtime.POD_FILES)
