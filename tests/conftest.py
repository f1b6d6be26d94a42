"""Shared fixtures: the real recordings in ../shared/data (beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SKELMAE_TEST_DATA", REPO.parent / "shared" / "data"))


def data_path(*parts: str) -> Path:
    """Path of a file in the shared real-data folder; skips (loudly) when the folder is absent."""
    p = DATA.joinpath(*parts)
    if not DATA.is_dir():
        pytest.fail(f"shared test data not found at {DATA} (set SKELMAE_TEST_DATA)")
    return p


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared test data not found at {DATA} (set SKELMAE_TEST_DATA)")
    return DATA


@pytest.fixture
def notifications():
    """The messages of the napari notifications shown during a test."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(n):
        seen.append(str(n.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)
