"""Shared fixtures: a synthetic benchmark in xlsa17 layout, and the real shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def xlsa17_dir(tmp_path: Path) -> Path:
    """`synthetic_benchmark()` written as `res101.mat` + `att_splits.mat` (MATLAB v5)."""
    from unseen.data.synthetic import synthetic_benchmark
    from unseen.data.xlsa17 import write_xlsa17

    return write_xlsa17(synthetic_benchmark(), tmp_path / "SYNTH")


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the repository; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
