"""Shared test setup: offline, deterministic, one thread per worker (pytest -n 2 on 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
if "HF_DATASETS_CACHE" not in os.environ:  # datasets' Arrow cache of the tests' own tables, not ~/.cache
    import tempfile

    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="xai-bias-hf-datasets-")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MMMU_PRO = SHARED / "data" / "mmmu_pro_tool" / "data.jsonl"
GPT4O = SHARED / "data" / "mmmu_pro_gpt4o"


def pytest_configure(config):  # noqa: ARG001
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def mmmu_pro_path() -> Path:
    return require_shared(MMMU_PRO)


def require_shared(path: Path) -> Path:
    """``path`` under ../shared; absent: a skip on a developer's machine, a failure under
    ``CI=true`` (CI has ../shared, so a missing file there is a broken setup, not a reason to
    pass)."""
    if not path.exists():
        message = f"shared data not found at {path}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI=true: the shared data must be present)")
        pytest.skip(message)
    return path


def require_tool(name: str) -> str:
    """The path of command ``name``; absent: skip locally, fail under ``CI=true`` (.ci/run
    installs it)."""
    import shutil

    found = shutil.which(name)
    if found is None:
        message = f"{name} not installed"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI=true: .ci/run installs it)")
        pytest.skip(message)
    return found
