"""The bundled sample recording: two flies from the sleap-io.js demo (BSD-3, see
``data/ATTRIBUTION.md``), 1350 frames at 25 fps with its video."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .tracks import PoseTracks

SAMPLE_SLP = "demo-flies13-preds.slp"
SAMPLE_VIDEO = "demo-flies13-preds.mp4"


def sample_path() -> Path:
    """Path of the bundled sample .slp (its video lies beside it)."""
    return Path(str(resources.files(__package__).joinpath("data", SAMPLE_SLP)))


def sample_tracks() -> PoseTracks:
    """The sample recording as PoseTracks, with its video attached."""
    from .io import load_tracks

    return load_tracks(sample_path())
