"""DeepLabCut-family pose tables: DeepLabCut predictions and labelled data, multi-animal
DeepLabCut and Lightning Pose, as ``.h5`` (pandas HDFStore) or ``.csv`` (also gzipped).

All of them are one table: a column header of 3 rows (scorer / bodyparts / coords) or 4 rows
(scorer / individuals / bodyparts / coords), and one row per video frame (predictions: the
frame number) or per labelled image (labelled data: the image path). Both file kinds are
turned into the same intermediate :class:`_Table` and then into a
:class:`~napari_skelmae.tracks.PoseTracks`, so CSV and HDF5 cannot drift apart.

The CSV header is parsed here rather than by ``pandas.read_csv(header=[0, 1, 2])``, whose
MultiIndex header parsing is slow on long files; the numeric block is read in one call.
sleap-io is not used: it re-sorts bodyparts and returns no frames for prediction CSVs.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SkelmaeError, SkelmaeWarning, TracksFileError, TracksValidationError
from ..tracks import PoseTracks
from ._common import (
    atomic_output,
    check_readable_file,
    hdf5_keys,
    is_gzip,
    is_hdf5,
    open_text,
    reading,
)

__all__ = ["HDF_KEY", "SINGLE_ANIMAL_NAME", "read", "tracks_to_dataframe", "write"]

#: The HDFStore key DeepLabCut writes (and reads first).
HDF_KEY = "df_with_missing"
#: Individual name for single-animal tables, which name none (movement uses the same).
SINGLE_ANIMAL_NAME = "individual_0"

SPACE_COORDS = ("x", "y", "z")
LIKELIHOOD = "likelihood"
HEADER_LEVELS_SINGLE = ("scorer", "bodyparts", "coords")
HEADER_LEVELS_MULTI = ("scorer", "individuals", "bodyparts", "coords")
DEFAULT_SCORER = "napari-skelmae"
CONFIG_NAME = "config.yaml"
CONFIG_SEARCH_DEPTH = 3  # labeled-data/<video>/file is two folders below the project

_TRAILING_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclasses.dataclass
class _Table:
    """A DLC table before interpretation: header levels per value column, row labels, values."""

    scorers: list[str]
    individuals: list[str] | None  # None for the single-animal (3-row) layout
    bodyparts: list[str]
    coords: list[str]
    row_labels: np.ndarray  # int64 (predictions) or object str (labelled image paths)
    values: np.ndarray  # float64 (rows, value columns)


# ====================================================================== reading
def read(path: str | os.PathLike, fps: float | None = None) -> PoseTracks:
    """Read a DeepLabCut / multi-animal DLC / Lightning Pose table (.h5, .csv, .csv.gz).

    Bodyparts keep the file's order. ``fps`` is stored as given (DLC files hold none).
    Raises :class:`TracksFileError` naming the file when it is not a usable pose table.
    """
    p = check_readable_file(path)
    table = _read_h5_table(p) if is_hdf5(p) else _read_csv_table(p)
    return _table_to_tracks(p, table, fps)


def _read_h5_table(p: Path) -> _Table:
    hdf5_keys(p)  # a clear "damaged or truncated" error before PyTables gets its turn
    with reading(p, "a pandas HDFStore (DeepLabCut .h5)"), pd.HDFStore(p, mode="r") as store:
        keys = [k.lstrip("/") for k in store]
        if HDF_KEY in keys:
            key = HDF_KEY
        elif len(keys) == 1:
            key = keys[0]
        elif not keys:
            raise TracksFileError(p, "the HDF5 file holds no pandas table")
        else:
            raise TracksFileError(
                p, f"no '{HDF_KEY}' table and several others to choose from: {keys[:10]}"
            )
        frame = store[key]
    if not isinstance(frame, pd.DataFrame):
        raise TracksFileError(p, f"table '{key}' is a {type(frame).__name__}, not a DataFrame")
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex) or columns.nlevels not in (3, 4):
        shown = [str(c) for c in list(columns)[:6]]
        raise TracksFileError(
            p,
            f"table '{key}' is not a DeepLabCut pose table: its columns should have the levels "
            f"scorer/(individuals/)bodyparts/coords, but are {shown}",
        )
    expected = HEADER_LEVELS_MULTI if columns.nlevels == 4 else HEADER_LEVELS_SINGLE
    if all(columns.names) and tuple(n.lower() for n in columns.names) != expected:
        raise TracksFileError(
            p,
            f"table '{key}' is not a DeepLabCut pose table: column levels are "
            f"{list(columns.names)}, expected {list(expected)}",
        )
    levels = [[str(v) for v in columns.get_level_values(i)] for i in range(columns.nlevels)]
    bad = [
        str(c)
        for c, dtype in zip(columns, frame.dtypes, strict=True)
        if not pd.api.types.is_numeric_dtype(dtype)
    ]
    if bad:
        raise TracksFileError(p, f"table '{key}' has non-numeric columns: {bad[:5]}")
    index = frame.index
    if isinstance(index, pd.MultiIndex):  # newer DLC labelled data: (labeled-data, video, img)
        labels = np.array(["/".join(str(v) for v in tup) for tup in index], dtype=object)
    elif pd.api.types.is_numeric_dtype(index.dtype) and whole_numbers(index.to_numpy()):
        labels = index.to_numpy().astype(np.int64)
    else:
        labels = np.array([str(v) for v in index], dtype=object)
    return _Table(
        scorers=levels[0],
        individuals=levels[1] if len(levels) == 4 else None,
        bodyparts=levels[-2],
        coords=levels[-1],
        row_labels=labels,
        values=frame.to_numpy(dtype=np.float64),
    )


def _read_csv_table(p: Path) -> _Table:
    rows = _csv_head_rows(p, 6)
    header_rows, n_index, skip = _parse_csv_header(p, rows)
    labels = {r[0].strip().lower(): r[n_index:] for r in header_rows}
    n_values = len(labels["coords"])
    with reading(p, "a DeepLabCut CSV table"):
        try:
            data = pd.read_csv(
                p,
                header=None,
                skiprows=skip,
                compression="gzip" if is_gzip(p) else None,
                low_memory=False,
                skip_blank_lines=True,
            )
        except pd.errors.EmptyDataError:
            raise TracksFileError(p, "the table has a header but no data rows") from None
    if data.shape[1] != n_index + n_values:
        raise TracksFileError(
            p,
            f"the data rows have {data.shape[1]} columns but the header describes "
            f"{n_index + n_values}",
        )
    if len(data) == 0:
        raise TracksFileError(p, "the table has a header but no data rows")
    row_labels = _csv_row_labels(data.iloc[:, :n_index])

    def column_name(j: int) -> str:
        parts = [f"{lvl} '{labels[lvl][j]}'" for lvl in ("individuals", "bodyparts", "coords")
                 if lvl in labels]
        return ", ".join(parts)

    values = numeric_block(p, data.iloc[:, n_index:], first_line=skip,
                           column_name=column_name)
    return _Table(
        scorers=labels["scorer"],
        individuals=labels.get("individuals"),
        bodyparts=labels["bodyparts"],
        coords=labels["coords"],
        row_labels=row_labels,
        values=values,
    )


def _csv_row_labels(index_columns: pd.DataFrame) -> np.ndarray:
    """int64 frame numbers when the index holds whole numbers, else the labels as strings
    (image paths; several index columns are joined with '/')."""
    if index_columns.shape[1] == 1:
        first = index_columns.iloc[:, 0]
        if pd.api.types.is_numeric_dtype(first.dtype) and whole_numbers(first.to_numpy()):
            return first.to_numpy().astype(np.int64)
    cells = index_columns.fillna("").astype(str)
    labels = cells.iloc[:, 0] if cells.shape[1] == 1 else cells.agg("/".join, axis=1)
    numbers = pd.to_numeric(labels, errors="coerce").to_numpy()
    return numbers.astype(np.int64) if whole_numbers(numbers) else labels.to_numpy(dtype=object)


def whole_numbers(values: np.ndarray) -> bool:
    """True when every value is a finite whole number (a frame-number index)."""
    numbers = values.astype(np.float64)
    return bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))


def _csv_head_rows(p: Path, n: int) -> list[list[str]]:
    """The first ``n`` rows of a (gzipped) CSV, split by the csv module (quotes respected)."""
    with reading(p, "a text (CSV) file"), open_text(p) as f:
        lines = [f.readline() for _ in range(n)]
    rows = [next(csv.reader([ln])) if ln.strip() else [] for ln in lines]
    if rows and rows[0]:
        rows[0][0] = rows[0][0].lstrip("\ufeff")
    return rows


def _parse_csv_header(p: Path, rows: list[list[str]]) -> tuple[list[list[str]], int, int]:
    """Validate the header rows; return them, the number of index columns and of rows to skip.

    Newer DLC labelled CSVs spread the image path over 3 index columns
    (``labeled-data,video,img.png``); their header rows then start with empty cells.
    """
    if not rows or not rows[0]:
        raise TracksFileError(p, "the CSV file holds no rows")
    names = []
    for r in rows:
        name = r[0].strip().lower() if r else ""
        if name not in HEADER_LEVELS_MULTI or name in names:
            break
        names.append(name)
    if not names or names[0] != "scorer":
        raise TracksFileError(
            p, f"a DeepLabCut table starts with a 'scorer' header row, not {rows[0][:3]}"
        )
    if tuple(names) not in (HEADER_LEVELS_SINGLE, HEADER_LEVELS_MULTI):
        missing = [n for n in HEADER_LEVELS_SINGLE if n not in names]
        what = (f"header row {missing[0]!r} is missing" if missing
                else "header rows are out of order")
        raise TracksFileError(
            p,
            f"{what}: found rows {names}, expected {list(HEADER_LEVELS_SINGLE)} or "
            f"{list(HEADER_LEVELS_MULTI)}",
        )
    header = rows[: len(names)]
    widths = {len(r) for r in header}
    if len(widths) != 1:
        raise TracksFileError(
            p, f"the header rows have different numbers of cells: {[len(r) for r in header]}"
        )
    coords_row = header[-1]
    n_index = 1
    while n_index < len(coords_row) and not coords_row[n_index].strip():
        n_index += 1
    if n_index == len(coords_row):
        raise TracksFileError(p, "the header names no value columns (the 'coords' row is empty)")
    for r in header:
        empty = [j for j in range(n_index, len(r)) if not r[j].strip()]
        if empty:
            raise TracksFileError(
                p, f"header row '{r[0]}' has an empty cell in column {empty[0] + 1}"
            )
    skip = len(header)
    after = rows[skip] if len(rows) > skip else []
    if _is_index_name_row(after, n_index):
        skip += 1  # pandas writes a row with the index's name when it has one
    return header, n_index, skip


def _is_index_name_row(cells: list[str], n_index: int) -> bool:
    """True for pandas' index-name row ("frame,,,"): a name without digits and no values."""
    if len(cells) <= n_index or any(c.strip() for c in cells[n_index:]):
        return False
    leading = "".join(cells[:n_index])
    return bool(leading.strip()) and not any(ch.isdigit() or ch in "/\\." for ch in leading)


def numeric_block(path: Path, block: pd.DataFrame, first_line: int, column_name) -> np.ndarray:
    """The block as float64, or a TracksFileError naming the first non-numeric cell.

    ``first_line`` is the 0-based file line of the block's first row (after the header);
    ``column_name(j)`` describes value column ``j`` for the message.
    """
    columns = []
    for j in range(block.shape[1]):
        column = block.iloc[:, j]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            columns.append(column.to_numpy(dtype=np.float64))
            continue
        coerced = pd.to_numeric(column.astype(str).where(column.notna()), errors="coerce")
        bad = np.flatnonzero(coerced.isna().to_numpy() & column.notna().to_numpy())
        if bad.size:
            r = int(bad[0])
            raise TracksFileError(
                path,
                f"non-numeric value {str(column.iloc[r])[:40]!r} in data row {r + 1} "
                f"(line {first_line + r + 1} of the file), column {j + 1} of the values "
                f"({column_name(j)})",
            )
        columns.append(coerced.to_numpy(dtype=np.float64))
    if not columns:
        return np.zeros((len(block), 0), dtype=np.float64)
    return np.column_stack(columns)


def _table_to_tracks(p: Path, t: _Table, fps: float | None) -> PoseTracks:
    n_rows = t.values.shape[0]
    if n_rows == 0:
        raise TracksFileError(p, "the table has a header but no data rows")
    individuals = t.individuals or [SINGLE_ANIMAL_NAME] * len(t.coords)
    groups: dict[tuple[str, str], dict[str, int]] = {}
    ignored: list[str] = []
    for j, (ind, bp, coord) in enumerate(zip(individuals, t.bodyparts, t.coords, strict=True)):
        coord = coord.strip().lower()
        if coord not in SPACE_COORDS and coord != LIKELIHOOD:
            ignored.append(coord)
            continue
        group = groups.setdefault((ind, bp), {})
        if coord in group:
            raise TracksFileError(p, f"column ({ind}, {bp}, {coord}) appears twice")
        group[coord] = j
    if not groups:
        raise TracksFileError(
            p,
            "the 'coords' header row holds no x/y/likelihood columns "
            f"(found {sorted(set(ignored))})",
        )
    no_xy = [key for key, g in groups.items() if "x" not in g or "y" not in g]
    if no_xy:
        ind, bp = no_xy[0]
        raise TracksFileError(
            p,
            f"bodypart '{bp}'" + (f" of '{ind}'" if t.individuals else "")
            + f" lacks an x or y column (coords found: {sorted(groups[no_xy[0]])}); the "
            "'coords' row must name x, y (z) and optionally likelihood",
        )
    with_z = {("z" in g) for g in groups.values()}
    if len(with_z) > 1:
        raise TracksFileError(p, "some bodyparts have a z column and others do not")
    space = SPACE_COORDS if with_z.pop() else SPACE_COORDS[:2]
    if ignored:
        warnings.warn(
            f"'{p}': ignoring columns with coords {sorted(set(ignored))} "
            "(only x, y, z and likelihood are pose data)",
            SkelmaeWarning,
            stacklevel=3,
        )

    ind_names = list(dict.fromkeys(ind for ind, _ in groups))
    kp_names = list(dict.fromkeys(bp for _, bp in groups))
    n_ind, n_kp, n_sp = len(ind_names), len(kp_names), len(space)
    ind_pos = {n: i for i, n in enumerate(ind_names)}
    kp_pos = {n: k for k, n in enumerate(kp_names)}
    src_pos, dst_pos, src_conf, dst_conf = [], [], [], []
    for (ind, bp), g in groups.items():
        cell = ind_pos[ind] * n_kp + kp_pos[bp]
        for s, coord in enumerate(space):
            src_pos.append(g[coord])
            dst_pos.append(cell * n_sp + s)
        if LIKELIHOOD in g:
            src_conf.append(g[LIKELIHOOD])
            dst_conf.append(cell)
    positions = np.full((n_rows, n_ind * n_kp * n_sp), np.nan, dtype=np.float32)
    positions[:, dst_pos] = t.values[:, src_pos]
    confidence = np.full((n_rows, n_ind * n_kp), np.nan, dtype=np.float32)
    if src_conf:
        confidence[:, dst_conf] = t.values[:, src_conf]
    positions = positions.reshape(n_rows, n_ind, n_kp, n_sp)
    if np.isnan(positions).all():
        raise TracksFileError(p, "every point is missing (the table holds only NaN)")

    labelled = t.row_labels.dtype == object
    frame_index, frame_source = frame_numbers(t.row_labels)
    found = find_config(p)
    config, edges = (found[0], skeleton_edges(*found, kp_names)) if found else (None, [])
    metadata = {
        "scorer": t.scorers[0],
        "dlc_kind": "labelled" if labelled else "predictions",
        "dlc_layout": "multi-animal" if t.individuals else "single-animal",
        "dlc_config": str(config) if config else None,
        "frame_index_source": frame_source,
    }
    if labelled:
        metadata["image_files"] = [str(x) for x in t.row_labels]
    if ignored:
        metadata["ignored_coords"] = sorted(set(ignored))
    try:
        return PoseTracks(
            positions=positions,
            confidence=confidence.reshape(n_rows, n_ind, n_kp),
            keypoint_names=kp_names,
            individual_names=ind_names,
            edges=edges,
            frame_index=frame_index,
            fps=fps,
            source_path=p,
            metadata=metadata,
        )
    except TracksValidationError as e:
        raise TracksFileError(p, str(e)) from e


def frame_numbers(row_labels: np.ndarray) -> tuple[np.ndarray, str]:
    """Video frame of each row, and where it came from (for ``metadata``).

    Integer labels are frame numbers (kept as they are, e.g. 1-based). Image paths give the
    last number in the file name (``img0123.png`` -> 123). When numbers repeat, are negative
    or cannot be parsed, rows are numbered 0, 1, ... and the reason is returned.
    """
    n = len(row_labels)
    if row_labels.dtype != object:
        numbers = row_labels.astype(np.int64)
        source = "table index"
    else:
        parsed = [_TRAILING_NUMBER.search(Path(str(x).replace("\\", "/")).stem)
                  for x in row_labels]
        if any(m is None for m in parsed):
            bad = next(str(x) for x, m in zip(row_labels, parsed, strict=True) if m is None)
            return np.arange(n, dtype=np.int64), (
                f"row order (no frame number in image name {bad!r})")
        numbers = np.array([int(m.group(1)) for m in parsed], dtype=np.int64)
        source = "image file names"
    if len(np.unique(numbers)) != n:
        return np.arange(n, dtype=np.int64), f"row order ({source} repeat frame numbers)"
    if n and numbers.min() < 0:
        return np.arange(n, dtype=np.int64), f"row order ({source} hold negative numbers)"
    return numbers, source


# ====================================================================== skeleton
def find_config(path: Path) -> tuple[Path, dict] | None:
    """The DeepLabCut ``config.yaml`` beside the file or up to 3 folders above it, parsed.

    A ``config.yaml`` that is not a DLC project config (no bodyparts/skeleton) is passed over.
    """
    folder = path.resolve().parent
    for _ in range(CONFIG_SEARCH_DEPTH + 1):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            cfg = _load_dlc_config(candidate)
            if cfg is not None:
                return candidate, cfg
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def _load_dlc_config(path: Path) -> dict | None:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        warnings.warn(f"Cannot read '{path}' as a DeepLabCut config ({type(e).__name__}); "
                      "no skeleton from it.", SkelmaeWarning, stacklevel=4)
        return None
    keys = {"bodyparts", "multianimalbodyparts", "skeleton"}
    return cfg if isinstance(cfg, dict) and keys & set(cfg) else None


def skeleton_edges(config: Path, cfg: dict, keypoints: list[str]) -> list[tuple[int, int]]:
    """Edges from the config's ``skeleton`` (pairs of bodypart names) as keypoint indices.

    Entries that are not pairs of these keypoints are skipped with a warning.
    """
    pairs = cfg.get("skeleton") or []
    if not isinstance(pairs, list):
        pairs = [pairs]
    position = {name: k for k, name in enumerate(keypoints)}
    edges: list[tuple[int, int]] = []
    skipped = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            skipped.append(pair)
            continue
        a, b = (str(x) for x in pair)
        if a not in position or b not in position:
            skipped.append([a, b])
            continue
        edge = (position[a], position[b])
        if a != b and edge not in edges and edge[::-1] not in edges:
            edges.append(edge)
    if skipped:
        warnings.warn(
            f"Skeleton in '{config}' has entries that are not pairs of these bodyparts "
            f"{keypoints[:8]}; skipped: {skipped[:5]}",
            SkelmaeWarning,
            stacklevel=3,
        )
    return edges


# ====================================================================== writing
def tracks_to_dataframe(tracks: PoseTracks) -> pd.DataFrame:
    """The tracks as a DeepLabCut table (the layout DLC writes).

    Multi-animal (4 header levels) when there is more than one individual, else the
    single-animal 3-level layout, which has no place for the individual's name. The
    ``likelihood`` column holds the confidence; it is left out when no confidence is known
    (as in DLC labelled data). Rows are indexed by frame number, or by the image paths of
    labelled data read from DLC when those still match the frames.
    """
    scorer = tracks.metadata.get("scorer")
    scorer = scorer if isinstance(scorer, str) and scorer else DEFAULT_SCORER
    coords = list(SPACE_COORDS[: tracks.n_space])
    data = tracks.positions.astype(np.float64)
    if not np.isnan(tracks.confidence).all():
        coords.append(LIKELIHOOD)
        data = np.concatenate([data, tracks.confidence[..., None].astype(np.float64)], axis=-1)
    if tracks.n_individuals > 1:
        columns = pd.MultiIndex.from_product(
            [[scorer], tracks.individual_names, tracks.keypoint_names, coords],
            names=list(HEADER_LEVELS_MULTI),
        )
    else:
        columns = pd.MultiIndex.from_product(
            [[scorer], tracks.keypoint_names, coords], names=list(HEADER_LEVELS_SINGLE)
        )
    return pd.DataFrame(
        data.reshape(tracks.n_frames, -1), index=_row_index(tracks), columns=columns
    )


def _row_index(tracks: PoseTracks) -> pd.Index:
    images = tracks.metadata.get("image_files")
    if (
        tracks.metadata.get("dlc_kind") == "labelled"
        and isinstance(images, list)
        and len(images) == tracks.n_frames
    ):
        names = np.array(images, dtype=object)
        numbers, source = frame_numbers(names)
        if source == "image file names" and np.array_equal(numbers, tracks.frame_index):
            return pd.Index(names)
    return pd.Index(tracks.frame_index)


def write(tracks: PoseTracks, path: str | os.PathLike) -> Path:
    """Write the tracks as a DeepLabCut table: ``.csv``, ``.csv.gz`` or ``.h5``.

    HDF5 uses the key ``df_with_missing`` as DLC does. The file appears complete or not at
    all (written to a temporary file beside it, then moved into place).
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".h5", ".hdf5")):
        kind = "h5"
    elif name.endswith((".csv", ".csv.gz")):
        kind = "csv"
    else:
        raise SkelmaeError(
            f"Cannot write DeepLabCut table '{p}': use a .csv, .csv.gz or .h5 file name"
        )
    frame = tracks_to_dataframe(tracks)
    with atomic_output(p, "DeepLabCut table") as tmp:
        if kind == "h5":
            frame.to_hdf(tmp, key=HDF_KEY, mode="w", format="table")
        else:
            frame.to_csv(tmp, compression="gzip" if name.endswith(".gz") else None)
    return p
