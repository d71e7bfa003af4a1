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
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture
def mmmu_pro_path() -> Path:
    if not MMMU_PRO.exists():
        pytest.skip(f"shared MMMU-Pro data not found at {MMMU_PRO}")
    return MMMU_PRO
