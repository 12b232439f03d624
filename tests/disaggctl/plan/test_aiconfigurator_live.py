"""The recorded answers are AIConfigurator's: each recorded search re-run live where it is installed.

Runs when ``$DISAGG_AIC_PYTHON`` or ``.venv-plan/bin/python`` has aiconfigurator 0.12.0
(``requirements-plan.txt``); skipped otherwise (the project's venv cannot hold it: numpy < 2),
except where ``DISAGG_AIC_REQUIRED=1`` (the scheduled workflow .github/workflows/planner-live.yml):
there a missing interpreter fails, so the check cannot pass by skipping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from disaggctl.plan.perf_model import DEFAULT_AIC_PYTHON, AIConfiguratorModel, SearchRequest

PROJECT_DIR = Path(__file__).resolve().parents[3]
PYTHON = os.environ.get("DISAGG_AIC_PYTHON") or str(PROJECT_DIR / DEFAULT_AIC_PYTHON)
REQUIRED = os.environ.get("DISAGG_AIC_REQUIRED") == "1"
RECORDED = sorted((Path(__file__).with_name("data") / "aic").glob("*.json"))


def test_every_recorded_answer_is_found() -> None:
    assert len(RECORDED) >= 3


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_live_search_matches_the_recorded_answer(path: Path, tmp_path: Path) -> None:
    if not Path(PYTHON).exists():
        message = f"no AIConfigurator interpreter at {PYTHON} (.venv-plan or DISAGG_AIC_PYTHON)"
        if REQUIRED:
            pytest.fail(f"DISAGG_AIC_REQUIRED=1 but {message}")
        pytest.skip(message)
    recorded = json.loads(path.read_text())
    request = SearchRequest(**recorded["request"])
    assert request.key() == path.stem  # the file is the answer to this request
    live = AIConfiguratorModel(PYTHON, record_dir=tmp_path).search(request)
    assert live["engine"] == recorded["engine"] == "aiconfigurator 0.12.0"
    assert live["database"] == recorded["database"]
    assert live["candidates"] == recorded["candidates"]
