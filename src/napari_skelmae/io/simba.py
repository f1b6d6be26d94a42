"""SimBA flat pose tables (.csv): one header row, pose columns ``<part>_<animal>_x/_y/_p``.

SimBA's feature and machine-results files put the pose columns first, then hundreds of
engineered features and the classifiers' ``*_prediction`` columns. Only the pose columns
become tracks; the classifier column names are kept in ``metadata`` so a caller can find
them. Animals are named ``Animal_<n>``, SimBA's own default when a project names none
(the file itself says nothing about species).
"""

from __future__ import annotations

import csv
import os
import re

import numpy as np
import pandas as pd

from ..errors import TracksFileError, TracksValidationError
from ..tracks import PoseTracks
from ._common import check_readable_file, is_gzip, open_text, reading
from .dlc import frame_numbers, numeric_block, whole_numbers

__all__ = ["read"]

POSE_COLUMN = re.compile(r"^(?P<part>.+)_(?P<animal>\d+)_(?P<coord>[xyp])$")
PREDICTION_SUFFIX = "_prediction"


def read(path: str | os.PathLike, fps: float | None = None) -> PoseTracks:
    """Read the pose columns of a SimBA CSV as tracks (2D, one individual per animal number).

    The first column ('scorer') holds the frame numbers. ``fps`` is stored as given.
    """
    p = check_readable_file(path)
    with reading(p, "a SimBA CSV table"), open_text(p) as f:
        header = next(csv.reader([f.readline()]), [])
    if not header or header[0].lstrip("\ufeff").strip().lower() != "scorer":
        raise TracksFileError(p, f"a SimBA table starts with a 'scorer' column, not {header[:3]}")

    pose: dict[tuple[int, str], dict[str, int]] = {}
    for j, name in enumerate(header[1:], start=1):
        m = POSE_COLUMN.match(name.strip())
        if m:
            group = pose.setdefault((int(m["animal"]), m["part"]), {})
            if m["coord"] in group:
                raise TracksFileError(p, f"column '{name}' appears twice")
            group[m["coord"]] = j
    incomplete = [f"{part}_{animal}" for (animal, part), g in pose.items()
                  if "x" not in g or "y" not in g]
    if incomplete:
        raise TracksFileError(p, f"bodyparts without both _x and _y columns: {incomplete[:5]}")
    if not pose:
        raise TracksFileError(
            p, "no pose columns named '<part>_<animal number>_x/_y/_p' in the header"
        )

    used = sorted({0} | {j for g in pose.values() for j in g.values()})
    with reading(p, "a SimBA CSV table"):
        try:
            data = pd.read_csv(
                p,
                header=None,
                skiprows=1,
                usecols=used,
                dtype={0: str},
                compression="gzip" if is_gzip(p) else None,
                low_memory=False,
            )
        except pd.errors.EmptyDataError:
            raise TracksFileError(p, "the table has a header but no data rows") from None
    if len(data) == 0:
        raise TracksFileError(p, "the table has a header but no data rows")
    column_of = {j: k for k, j in enumerate(used)}  # file column -> column of `data`
    values = numeric_block(
        p, data.iloc[:, 1:], first_line=1, column_name=lambda k: f"'{header[used[k + 1]]}'"
    )

    animals = sorted({animal for animal, _ in pose})
    parts = list(dict.fromkeys(part for _, part in pose))
    n_rows = len(data)
    positions = np.full((n_rows, len(animals), len(parts), 2), np.nan, dtype=np.float32)
    confidence = np.full((n_rows, len(animals), len(parts)), np.nan, dtype=np.float32)
    for (animal, part), g in pose.items():
        i, k = animals.index(animal), parts.index(part)
        positions[:, i, k, 0] = values[:, column_of[g["x"]] - 1]
        positions[:, i, k, 1] = values[:, column_of[g["y"]] - 1]
        if "p" in g:
            confidence[:, i, k] = values[:, column_of[g["p"]] - 1]
    if np.isnan(positions).all():
        raise TracksFileError(p, "every point is missing (the pose columns hold only NaN)")

    row_labels = data.iloc[:, 0].fillna("").astype(str).to_numpy(dtype=object)
    numbers = pd.to_numeric(pd.Series(row_labels), errors="coerce").to_numpy()
    if whole_numbers(numbers):
        frame_index, frame_source = frame_numbers(numbers.astype(np.int64))
    else:
        frame_index = np.arange(n_rows, dtype=np.int64)
        frame_source = "row order (the 'scorer' column holds no frame numbers)"
    metadata = {
        "simba_prediction_columns": [
            c.strip() for c in header if c.strip().endswith(PREDICTION_SUFFIX)
        ],
        "frame_index_source": frame_source,
    }
    try:
        return PoseTracks(
            positions=positions,
            confidence=confidence,
            keypoint_names=parts,
            individual_names=[f"Animal_{a}" for a in animals],
            frame_index=frame_index,
            fps=fps,
            source_path=p,
            metadata=metadata,
        )
    except TracksValidationError as e:
        raise TracksFileError(p, str(e)) from e
