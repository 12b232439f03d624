"""The verify package stays light: no Pulumi at import, tritonclient only when talking to Triton."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_package_pulls_in_neither_pulumi_nor_tritonclient():
    code = (
        "import sys\n"
        "import disaggctl.verify.cli, disaggctl.verify.endpoints, disaggctl.verify.fabric\n"
        "import disaggctl.verify.health, disaggctl.verify.loadtest, disaggctl.verify.nccl_log\n"
        "import disaggctl.verify.generate, disaggctl.verify.stats\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'tritonclient')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_module_entry_point_prints_help():
    out = subprocess.run(
        [sys.executable, "-m", "disaggctl.verify", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0
    assert "{verify,fabric-check}" in out.stdout


def test_module_entry_point_exit_code_on_a_fallback_log():
    log = Path(__file__).parent / "data" / "nccl_socket_fallback.log"
    out = subprocess.run(
        [sys.executable, "-m", "disaggctl.verify", "fabric-check", "parse", "-", "--expect", "efa"],
        input=log.read_text(), capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert out.returncode == 1
    assert "fabric-check: FAIL: NCCL fell back to sockets" in out.stderr
