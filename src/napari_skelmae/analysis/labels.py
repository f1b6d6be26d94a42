"""Reading behaviour labels made elsewhere into the bouts table of :mod:`.bouts`.

``load_labels(path)`` sniffs the file's content (not its name) and reads:

* **BORIS** event exports (CSV/TSV): the classic "tabular events" export (a header block,
  then a ``Time,...,Status`` table), the BORIS >= 8 tabular export (one table with a
  ``Behavior type`` column of START/STOP/POINT and an ``Image index``), and the aggregated
  export (``Start (s)``/``Stop (s)`` per STATE or POINT row);
* a **bouts CSV** with columns ``individual, behaviour, start_frame, stop_frame`` (inclusive
  video frames; ``behavior`` is accepted; no individual column means ``individual=``);
* a **per-frame CSV**: a frame column (``frame``, ``frame_index``, ``frame_idx``...) and
  either a ``behaviour`` column (empty = unlabelled) or one 0/1 column per behaviour,
  optionally an ``individual`` column. SimBA machine-results tables are per-frame files whose
  ``*_prediction`` columns are the behaviours (named without the suffix).

BORIS times become video frames as the time intervals they are: a state from ``t_start`` to
``t_stop`` seconds covers every frame ``k`` whose display interval ``[k/fps, (k+1)/fps)``
overlaps ``[t_start, t_stop)``, so a STOP exactly on a frame boundary ends the bout on the
frame before (times within half a millisecond of a frame boundary, BORIS' rounding, count
as on it); a POINT event is the frame on screen at its time. When BORIS wrote the frame
numbers (``Image index``) they are used instead, with the same half-open reading of STOP.
The fps comes from ``fps=``, else the file's FPS column, else ``tracks.fps``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SkelmaeError, SkelmaeWarning
from .bouts import BOUT_COLUMNS, check_bouts, frames_to_bouts

__all__ = ["LABEL_FORMATS", "detect_label_format", "load_labels"]

LABEL_FORMATS = ("boris", "bouts", "frames", "simba")
FRAME_COLUMNS = ("frame", "frame_index", "frame_idx", "frame_number", "frames", "frame_id")
BEHAVIOUR_COLUMNS = ("behaviour", "behavior", "label", "action")
INDIVIDUAL_COLUMNS = ("individual", "subject", "track", "animal", "identity")
NO_FOCAL_SUBJECT = "No focal subject"
EPS = 1e-6  # frames: rounding of frame numbers
#: BORIS writes times in milliseconds: a time within half of one of a frame boundary is on it
TIME_TOLERANCE_S = 0.0005


class _LabelsError(SkelmaeError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"Cannot read labels from '{path}': {problem}")


# ------------------------------------------------------------------------------ sniffing
def _read_text(path: Path) -> str:
    if not path.exists():
        raise _LabelsError(path, "no such file")
    if not path.is_file():
        raise _LabelsError(path, "not a regular file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise _LabelsError(path, f"could not read it: {e}") from None
    if not raw.strip():
        raise _LabelsError(path, "the file is empty")
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    if b"\x00" in raw[:4096]:
        raise _LabelsError(path, "this is a binary file, not a CSV/TSV table")
    return raw.decode("utf-8-sig", errors="replace")


def _delimiter(line: str) -> str:
    return "\t" if line.count("\t") > line.count(",") else ","


def _rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    head = next((ln for ln in lines if ln.strip()), "")
    return list(csv.reader(lines, delimiter=_delimiter(head)))


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def _boris_header_row(rows: list[list[str]]) -> int | None:
    """Index of the row naming a BORIS events table's columns, or None."""
    for i, row in enumerate(rows[:200]):
        names = {_norm(c) for c in row}
        if "behavior" in names and "subject" in names and (
            ("time" in names and ({"status", "behavior type"} & names))
            or ({"start (s)", "stop (s)"} <= names)
        ):
            return i
    return None


def detect_label_format(path: str | os.PathLike) -> str:
    """``"boris"``, ``"bouts"``, ``"frames"`` or ``"simba"`` from the file's content."""
    path = Path(path)
    rows = _rows(_read_text(path))
    return _detect(path, rows)


def _detect(path: Path, rows: list[list[str]]) -> str:
    if _boris_header_row(rows) is not None:
        return "boris"
    header = next((r for r in rows if any(c.strip() for c in r)), [])
    names = [_norm(c) for c in header]
    if {"start_frame", "stop_frame"} <= set(names):
        return "bouts"
    if any(n.endswith("_prediction") for n in names) and names and names[0] in (
        "scorer", "", "frame", "frame_index"
    ):
        return "simba"
    if set(names) & set(FRAME_COLUMNS):
        return "frames"
    raise _LabelsError(
        path,
        "not a labels file this reader knows: expected a BORIS event export, a bouts CSV "
        f"(individual, behaviour, start_frame, stop_frame) or a per-frame CSV (a column named "
        f"one of {list(FRAME_COLUMNS)}); its first row is {header[:6]}",
    )


# ---------------------------------------------------------------------------------- api
def load_labels(
    path: str | os.PathLike,
    *,
    tracks: Any = None,
    fps: float | None = None,
    format: str = "auto",
    individual: str | Mapping[str, str] | None = None,
    behaviours: list[str] | None = None,
    allow_overlap: bool = False,
) -> pd.DataFrame:
    """Behaviour bouts (individual, behaviour, start_frame, stop_frame; inclusive video
    frames) from a BORIS export, a bouts CSV, a per-frame CSV or SimBA results.

    Parameters
    ----------
    tracks
        The recording the labels belong to: gives the fps when the file has none, a single
        individual for unattributed labels, and is checked against (unknown individuals and
        bouts wholly outside the recording are errors, bouts reaching past it are clipped
        with a warning).
    fps
        Frames per second of the labelled video (overrides the file's FPS column).
    format
        ``"auto"`` (sniff the content) or one of :data:`LABEL_FORMATS`.
    individual
        A track name for labels with no (or a blank, or BORIS' "No focal subject") subject,
        or a mapping {file subject: track name}.
    behaviours
        Per-frame 0/1 files only: the columns that are behaviours (default: every column but
        the frame and individual ones; SimBA: the ``*_prediction`` columns).
    allow_overlap
        Keep overlapping bouts of different behaviours of one individual (default: an error,
        since per-frame labels hold one behaviour per frame).

    Bouts of the same behaviour that share a frame are merged. The table's ``attrs`` hold
    ``source_path``, ``format`` and ``fps`` (None for frame-based files).
    """
    path = Path(path)
    text = _read_text(path)
    rows = _rows(text)
    if format == "auto":
        format = _detect(path, rows)
    elif format not in LABEL_FORMATS:
        raise SkelmaeError(f"unknown labels format {format!r}; choose 'auto' or one of "
                           f"{LABEL_FORMATS}")
    if fps is not None and not (isinstance(fps, (int, float, np.number)) and fps > 0
                                and math.isfinite(fps)):
        raise SkelmaeError(f"fps must be a positive number, got {fps!r}")
    names = _individual_names(tracks)
    mapping = _Mapping(path, individual, names)
    used_fps = None
    if format == "boris":
        table, used_fps = _read_boris(path, rows, fps, tracks, mapping)
    elif format == "bouts":
        table = _read_bouts_csv(path, text, mapping)
    else:
        table = _read_per_frame(path, text, mapping, behaviours, simba=format == "simba")
    if tracks is not None:
        table = _check_against_tracks(path, table, tracks)
    table = _merge_same_behaviour(table)
    try:
        out = check_bouts(table.drop(columns="line"), source=f"'{path}'",
                          allow_overlap=allow_overlap)
    except SkelmaeError as e:
        message = str(e)
        if "overlapping" in message:
            message += ("; per-frame labels hold one behaviour per frame: split the file by "
                        "behaviour, or pass allow_overlap=True to keep the table as it is")
        raise SkelmaeError(message) from None
    out = out.sort_values(["individual", "start_frame"], kind="stable").reset_index(drop=True)
    out.attrs.update(source_path=str(path), format=format, fps=used_fps)
    return out


# ------------------------------------------------------------------------- individuals
def _individual_names(tracks: Any) -> list[str] | None:
    if tracks is None:
        return None
    names = getattr(tracks, "individual_names", None)
    if names is None:
        raise SkelmaeError(f"tracks must be PoseTracks, got {type(tracks).__name__}")
    return [str(n) for n in names]


class _Mapping:
    """Subject -> individual: the user's mapping {subject: track}; else ``individual=`` for
    blank subjects and for the one named subject of a file; else the only individual of the
    tracks for blank subjects; else the subject's own name."""

    def __init__(self, path: Path, individual: Any, names: list[str] | None):
        self.path = path
        self.explicit: str | None = None
        self.blank: str | None = None
        self.table: dict[str, str] = {}
        self.renamed: set[str] = set()
        if isinstance(individual, Mapping):
            self.table = {str(k).strip(): str(v) for k, v in individual.items()}
        elif individual is not None:
            self.explicit = self.blank = str(individual)
        elif names is not None and len(names) == 1:
            self.blank = names[0]

    def __call__(self, subject: Any, line: int) -> str:
        s = "" if subject is None or (isinstance(subject, float) and math.isnan(subject)) \
            else str(subject).strip()
        if s in self.table:
            return self.table[s]
        if s in ("", NO_FOCAL_SUBJECT):
            if self.blank is None:
                raise _LabelsError(
                    self.path,
                    f"line {line}: the labels do not say which individual they belong to; pass "
                    "individual='<track name>' (or a mapping {subject: track name})",
                )
            return self.blank
        if self.explicit is not None:
            self.renamed.add(s)
            if len(self.renamed) > 1:
                raise _LabelsError(
                    self.path,
                    f"line {line}: the file names several subjects {sorted(self.renamed)}; "
                    "individual='<name>' can only rename one: pass a mapping "
                    "{subject: track name}",
                )
            return self.explicit
        return s


# ---------------------------------------------------------------------------------- BORIS
def _read_boris(
    path: Path, rows: list[list[str]], fps: float | None, tracks: Any, mapping: _Mapping
) -> tuple[pd.DataFrame, float]:
    h = _boris_header_row(rows)
    header = [_norm(c) for c in rows[h]]
    col = {name: j for j, name in enumerate(header) if name}
    offset = _boris_offset(rows[:h], rows[h + 1:], col)
    body = [(h + 2 + i, r) for i, r in enumerate(rows[h + 1:]) if any(c.strip() for c in r)]
    if not body:
        raise _LabelsError(path, "the BORIS export has a header but no events")

    def cell(r: list[str], name: str) -> str:
        j = col.get(name)
        return r[j].strip() if j is not None and j < len(r) else ""

    media = {cell(r, "media file path") or cell(r, "media file name") or cell(r, "source")
             for _, r in body} - {"", "NA"}
    if len(media) > 1 and "media file path" in col:
        raise _LabelsError(path, f"events from {len(media)} media files ({sorted(media)[:3]}"
                           "); export one observation of one video per file")
    used_fps = _boris_fps(path, body, col, cell, fps, tracks)

    tolerance = max(EPS, TIME_TOLERANCE_S * used_fps)  # in frames

    def to_frame(seconds: str, line: int) -> float:
        try:
            t = float(seconds) - offset
        except ValueError:
            raise _LabelsError(path, f"line {line}: time {seconds!r} is not a number") from None
        if not math.isfinite(t):
            raise _LabelsError(path, f"line {line}: time {seconds!r} is not a number")
        return t * used_fps

    def index_of(r: list[str], name: str) -> float | None:
        v = cell(r, name)
        try:
            x = float(v)
        except ValueError:
            return None
        return x if math.isfinite(x) and x >= 0 else None

    records: list[dict[str, Any]] = []
    aggregated = "start (s)" in col and "stop (s)" in col
    status_col = "status" if "status" in col else "behavior type"
    open_bouts: dict[tuple[str, str], tuple[int, int]] = {}
    for line, r in body:
        behaviour = cell(r, "behavior")
        if not behaviour:
            raise _LabelsError(path, f"line {line}: no behaviour")
        who = mapping(cell(r, "subject"), line)
        kind = cell(r, "behavior type" if aggregated else status_col).upper()
        if aggregated:
            start_index = index_of(r, "image index start")
            stop_index = index_of(r, "image index stop")
            a = start_index if start_index is not None else to_frame(cell(r, "start (s)"), line)
            tol = EPS if start_index is not None else tolerance
            if kind == "POINT":
                records.append(_point(who, behaviour, a, line, tol))
                continue
            if kind != "STATE":
                raise _LabelsError(path, f"line {line}: behaviour type {kind!r} is neither "
                                   "STATE nor POINT")
            b = stop_index if stop_index is not None else to_frame(cell(r, "stop (s)"), line)
            records.append(_state(path, who, behaviour, a, b, line,
                                  EPS if stop_index is not None else tolerance))
            continue
        index = index_of(r, "image index")
        x = index if index is not None else to_frame(cell(r, "time"), line)
        tol = EPS if index is not None else tolerance
        key = (who, behaviour)
        if kind == "POINT":
            records.append(_point(who, behaviour, x, line, tol))
        elif kind == "START":
            if key in open_bouts:
                raise _LabelsError(path, f"line {line}: {behaviour} of {who} starts again "
                                   f"before the START of line {open_bouts[key][1]} stopped")
            open_bouts[key] = (x, line, tol)
        elif kind == "STOP":
            if key not in open_bouts:
                raise _LabelsError(path, f"line {line}: STOP of {behaviour} of {who} without "
                                   "a START")
            a, start_line, start_tol = open_bouts.pop(key)
            records.append(_state(path, who, behaviour, a, x, start_line, start_tol, tol))
        else:
            raise _LabelsError(path, f"line {line}: status {kind!r} is not START, STOP or "
                               "POINT")
    if open_bouts:
        (who, behaviour), (_, line, _) = next(iter(open_bouts.items()))
        raise _LabelsError(path, f"line {line}: {behaviour} of {who} starts but never stops "
                           "(an unpaired START; close it in BORIS and export again)")
    return _table(records), used_fps


def _boris_offset(block: list[list[str]], rows: list[list[str]], col: dict[str, int]
                  ) -> float:
    """The observation's time offset: BORIS adds it to media time."""
    for r in block:
        if r and _norm(r[0]) == "time offset (s)" and len(r) > 1:
            try:
                return float(r[1])
            except ValueError:
                return 0.0
    j = col.get("time offset (s)")
    if j is not None:
        for r in rows:
            if j < len(r) and r[j].strip():
                try:
                    return float(r[j])
                except ValueError:
                    return 0.0
    return 0.0


def _boris_fps(path: Path, body, col, cell, fps: float | None, tracks: Any) -> float:
    found: set[float] = set()
    if "fps" in col:
        for _, r in body:
            value = cell(r, "fps")
            for part in re.split(r"[;|]", value):
                part = part.split(":")[-1].strip()
                try:
                    x = float(part)
                except ValueError:
                    continue
                if math.isfinite(x) and x > 0:
                    found.add(round(x, 6))
    tracks_fps = getattr(tracks, "fps", None) if tracks is not None else None
    if fps is not None:
        return float(fps)
    if len(found) > 1:
        raise _LabelsError(path, f"the events' media have different frame rates "
                           f"{sorted(found)}; pass fps=")
    if found:
        file_fps = found.pop()
        if tracks_fps and abs(tracks_fps - file_fps) > 1e-3 * file_fps:
            warnings.warn(f"'{path}': BORIS says the video is at {file_fps:g} fps, the tracks "
                          f"at {tracks_fps:g} fps; using the BORIS frame rate (pass fps= to "
                          "choose)", SkelmaeWarning, stacklevel=4)
        return file_fps
    if tracks_fps:
        return float(tracks_fps)
    raise _LabelsError(path, "the BORIS export gives no frame rate: pass fps= or tracks=")


def _point(who: str, behaviour: str, x: float, line: int, tol: float) -> dict[str, Any]:
    k = int(math.floor(x + tol))
    return {"individual": who, "behaviour": behaviour, "start_frame": k, "stop_frame": k,
            "line": line}


def _state(path: Path, who: str, behaviour: str, a: float, b: float, line: int,
           tol: float, stop_tol: float | None = None) -> dict[str, Any]:
    """Frames overlapping the half-open interval [a, b) (in frames; ``tol`` frames of
    rounding either way count as on the boundary)."""
    stop_tol = tol if stop_tol is None else stop_tol
    if b < a - EPS:
        raise _LabelsError(path, f"line {line}: {behaviour} of {who} stops before it starts")
    start = int(math.floor(a + tol))
    stop = max(start, int(math.ceil(b - stop_tol)) - 1)
    return {"individual": who, "behaviour": behaviour, "start_frame": start,
            "stop_frame": stop, "line": line}


def _table(records: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame.from_records(records, columns=BOUT_COLUMNS + ["line"])
    return table.astype({"start_frame": np.int64, "stop_frame": np.int64, "line": np.int64})


# ---------------------------------------------------------------------------- bouts CSV
def _pandas_table(path: Path, text: str) -> pd.DataFrame:
    head = next((ln for ln in text.splitlines() if ln.strip()), "")
    try:
        table = pd.read_csv(io.StringIO(text), sep=_delimiter(head), skip_blank_lines=True,
                            dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as e:
        raise _LabelsError(path, f"not a readable CSV table: {e}") from None
    table.columns = [_norm(c) for c in table.columns]
    dupes = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if dupes:
        raise _LabelsError(path, f"columns {dupes} appear twice")
    return table


def _find(table: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in table.columns), None)


def _lines(table: pd.DataFrame) -> np.ndarray:
    return np.arange(len(table), dtype=np.int64) + 2  # header is line 1


def _whole_numbers(path: Path, table: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(table[column].str.strip(), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise _LabelsError(path, f"line {k + 2}: {column} {table[column].iloc[k]!r} is not a "
                           "whole frame number")
    return values.astype(np.int64)


def _read_bouts_csv(path: Path, text: str, mapping: _Mapping) -> pd.DataFrame:
    table = _pandas_table(path, text)
    behaviour = _find(table, BEHAVIOUR_COLUMNS)
    if behaviour is None:
        raise _LabelsError(path, f"a bouts CSV needs a behaviour column; found "
                           f"{list(table.columns)}")
    who_col = _find(table, INDIVIDUAL_COLUMNS)
    lines = _lines(table)
    start = _whole_numbers(path, table, "start_frame")
    stop = _whole_numbers(path, table, "stop_frame")
    records = []
    for k in range(len(table)):
        name = table[behaviour].iloc[k].strip()
        if not name:
            raise _LabelsError(path, f"line {lines[k]}: no behaviour")
        if stop[k] < start[k]:
            raise _LabelsError(path, f"line {lines[k]}: stop_frame {stop[k]} is before "
                               f"start_frame {start[k]}")
        who = mapping(table[who_col].iloc[k] if who_col else "", int(lines[k]))
        records.append({"individual": who, "behaviour": name, "start_frame": int(start[k]),
                        "stop_frame": int(stop[k]), "line": int(lines[k])})
    return _table(records)


# ---------------------------------------------------------------------------- per-frame
def _read_per_frame(
    path: Path, text: str, mapping: _Mapping, behaviours: list[str] | None, simba: bool
) -> pd.DataFrame:
    table = _pandas_table(path, text)
    frame_col = _find(table, FRAME_COLUMNS) or ("scorer" if simba and "scorer" in table
                                               else None)
    if frame_col is None and simba and table.columns[0] == "":
        frame_col = ""
    if frame_col is None:
        raise _LabelsError(path, f"no frame column (one of {list(FRAME_COLUMNS)}); found "
                           f"{list(table.columns)[:8]}")
    frames = _whole_numbers(path, table, frame_col)
    who_col = _find(table, INDIVIDUAL_COLUMNS)
    lines = _lines(table)
    who = np.array([mapping(table[who_col].iloc[k] if who_col else "", int(lines[k]))
                    for k in range(len(table))], dtype=object)
    label_col = _find(table, BEHAVIOUR_COLUMNS)
    if behaviours is None and label_col is not None and not simba:
        names = table[label_col].str.strip().to_numpy(dtype=object)
        columns = None
    else:
        if behaviours is not None:
            wanted = [_norm(b) for b in behaviours]
            missing = [b for b, w in zip(behaviours, wanted) if w not in table.columns]
            if missing:
                raise _LabelsError(path, f"no column(s) {missing}")
            columns = dict(zip(wanted, [str(b) for b in behaviours]))
        elif simba:
            columns = {c: c[: -len("_prediction")] for c in table.columns
                       if c.endswith("_prediction")}
        else:
            columns = {c: c for c in table.columns if c not in (frame_col, who_col)}
        if not columns:
            raise _LabelsError(path, "no behaviour columns")
        names = np.full(len(table), "", dtype=object)
        for column, name in columns.items():
            values = pd.to_numeric(table[column].str.strip().replace("", "0"),
                                   errors="coerce").to_numpy(np.float64)
            bad = ~np.isin(values, (0.0, 1.0))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise _LabelsError(
                    path, f"line {lines[k]}: column {column!r} holds {table[column].iloc[k]!r}"
                    "; behaviour columns hold 0 or 1 (pass behaviours=[...] to choose them)")
            on = values == 1.0
            clash = on & (names != "")
            if clash.any():
                k = int(np.flatnonzero(clash)[0])
                raise _LabelsError(path, f"line {lines[k]}: frame {frames[k]} is both "
                                   f"{names[k]} and {name}; per-frame labels hold one "
                                   "behaviour per frame")
            names[on] = name
    records = []
    for individual in dict.fromkeys(who.tolist()):
        mine = np.flatnonzero(who == individual)
        f = frames[mine]
        if len(np.unique(f)) != len(f):
            k = mine[np.flatnonzero(pd.Series(f).duplicated().to_numpy())[0]]
            raise _LabelsError(path, f"line {lines[k]}: frame {frames[k]} of {individual} "
                               "appears twice")
        labelled = [n for n in dict.fromkeys(names[mine].tolist()) if n]
        code_of = {n: i for i, n in enumerate(labelled)}
        codes = np.array([code_of.get(n, -1) for n in names[mine]], np.int64)
        b = frames_to_bouts(codes[:, None], labelled, f, [individual])
        order = np.argsort(f, kind="stable")
        first_line = dict(zip(f[order].tolist(), lines[mine][order].tolist()))
        b["line"] = [first_line[s] for s in b["start_frame"]]
        records.extend(b.to_dict("records"))
    return _table(records)


# ------------------------------------------------------------------------------ checks
def _check_against_tracks(path: Path, table: pd.DataFrame, tracks: Any) -> pd.DataFrame:
    names = [str(n) for n in tracks.individual_names]
    unknown = ~table["individual"].isin(names)
    if unknown.any():
        k = int(np.flatnonzero(unknown.to_numpy())[0])
        others = sorted(set(table["individual"][unknown]))
        raise _LabelsError(
            path, f"line {table['line'].iloc[k]}: unknown individual(s) {others}; the tracks "
            f"have {names} (pass individual='<track name>' or {{subject: track name}})")
    frames = np.asarray(tracks.frame_index)
    if len(frames) == 0 or len(table) == 0:
        return table
    first, last = int(frames.min()), int(frames.max())
    outside = (table["stop_frame"] < first) | (table["start_frame"] > last)
    if outside.any():
        k = int(np.flatnonzero(outside.to_numpy())[0])
        raise _LabelsError(
            path, f"line {table['line'].iloc[k]}: {table['behaviour'].iloc[k]} frames "
            f"{table['start_frame'].iloc[k]}-{table['stop_frame'].iloc[k]} are outside the "
            f"recording's frames {first}-{last} (wrong fps or wrong recording?)")
    past = (table["start_frame"] < first) | (table["stop_frame"] > last)
    if past.any():
        warnings.warn(f"'{path}': {int(past.sum())} bout(s) reach past the recording's frames "
                      f"{first}-{last} and were clipped to it", SkelmaeWarning, stacklevel=3)
        table = table.copy()
        table["start_frame"] = table["start_frame"].clip(lower=first)
        table["stop_frame"] = table["stop_frame"].clip(upper=last)
    return table


def _merge_same_behaviour(table: pd.DataFrame) -> pd.DataFrame:
    """Bouts of one behaviour of one individual that share a frame become one (BORIS times
    rounded to frames can make a STOP and the next START land on the same frame)."""
    if table.empty:
        return table
    out = []
    ordered = table.sort_values(["individual", "behaviour", "start_frame"], kind="stable")
    for _, group in ordered.groupby(["individual", "behaviour"], sort=False):
        current = None
        for row in group.to_dict("records"):
            if current is not None and row["start_frame"] <= current["stop_frame"]:
                current["stop_frame"] = max(current["stop_frame"], row["stop_frame"])
                continue
            if current is not None:
                out.append(current)
            current = dict(row)
        out.append(current)
    return _table(out)
