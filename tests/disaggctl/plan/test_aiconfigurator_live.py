"""The recorded answers are AIConfigurator's: re-run one search live where it is installed.

Runs when ``$DISAGG_AIC_PYTHON`` or ``.venv-plan/bin/python`` has aiconfigurator 0.12.0
(``requirements-plan.txt``); skipped otherwise (the project's venv cannot hold it: numpy < 2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from disaggctl.plan.perf_model import DEFAULT_AIC_PYTHON, AIConfiguratorModel, SearchRequest

PROJECT_DIR = Path(__file__).resolve().parents[3]
PYTHON = os.environ.get("DISAGG_AIC_PYTHON") or str(PROJECT_DIR / DEFAULT_AIC_PYTHON)


@pytest.mark.skipif(not Path(PYTHON).exists(), reason="no AIConfigurator interpreter (.venv-plan or DISAGG_AIC_PYTHON)")
def test_live_search_matches_the_recorded_answer(tmp_path: Path) -> None:
    request = SearchRequest("meta-llama/Meta-Llama-3.1-8B", "a100_sxm", 16, 2000, 300, 800, 25)
    live = AIConfiguratorModel(PYTHON, record_dir=tmp_path).search(request)
    recorded = json.loads((Path(__file__).with_name("data") / "aic" / f"{request.key()}.json").read_text())
    assert live["engine"] == recorded["engine"] == "aiconfigurator 0.12.0"
    assert live["database"] == recorded["database"]
    assert live["candidates"] == recorded["candidates"]
