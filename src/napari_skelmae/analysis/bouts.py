"""Per-frame labels <-> behaviour bouts: the two shapes every behaviour result takes.

*Per-frame labels* are an int array ``codes`` (frames, individuals) aligned with the rows of a
:class:`~napari_skelmae.tracks.PoseTracks` (so with its ``frame_index``), holding an index
into a list of behaviour (or cluster) names, and ``-1`` where a row has no label.

*Bouts* are a :class:`pandas.DataFrame` with the columns of :data:`BOUT_COLUMNS`: one row per
uninterrupted stretch of one behaviour of one individual, ``start_frame`` and ``stop_frame``
being the first and last VIDEO frame of the stretch (both inclusive, BORIS' and SLEAP's
convention is converted at the file edge), optionally with a ``probability`` (the mean over the
stretch). Rows are sorted by individual, then start frame. A bout never spans a gap in the
tracked frames: rows whose video frames are not consecutive end a bout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import SkelmaeError

__all__ = [
    "BOUT_COLUMNS",
    "bouts_to_frames",
    "check_bouts",
    "frames_to_bouts",
    "remove_short_bouts",
]

BOUT_COLUMNS = ["individual", "behaviour", "start_frame", "stop_frame"]
UNLABELLED = -1


def _order(frame_index: np.ndarray) -> np.ndarray:
    return np.argsort(np.asarray(frame_index), kind="stable")


def _runs(codes_sorted: np.ndarray, frames_sorted: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) row ranges of equal codes in sorted rows, split at frame gaps."""
    n = len(codes_sorted)
    if n == 0:
        return []
    change = np.ones(n, bool)
    change[1:] = (codes_sorted[1:] != codes_sorted[:-1]) | (np.diff(frames_sorted) != 1)
    starts = np.flatnonzero(change)
    stops = np.append(starts[1:], n)
    return list(zip(starts.tolist(), stops.tolist()))


def frames_to_bouts(
    codes: np.ndarray,
    names: Sequence[str],
    frame_index: np.ndarray,
    individual_names: Sequence[str],
    probability: np.ndarray | None = None,
) -> pd.DataFrame:
    """Bouts of the labelled stretches of ``codes`` (frames, individuals); unlabelled rows
    (``-1``) belong to no bout. ``probability`` (frames, individuals) is averaged per bout."""
    codes = np.asarray(codes)
    frame_index = np.asarray(frame_index)
    if codes.ndim != 2 or codes.shape != (len(frame_index), len(individual_names)):
        raise SkelmaeError(
            f"labels of shape {codes.shape} do not fit {len(frame_index)} frames x "
            f"{len(individual_names)} individuals"
        )
    if codes.size and (codes.max(initial=-1) >= len(names) or codes.min(initial=0) < -1):
        raise SkelmaeError(f"label codes must be -1 or 0..{len(names) - 1}")
    order = _order(frame_index)
    frames = frame_index[order]
    records = []
    for i, individual in enumerate(individual_names):
        column = codes[order, i]
        prob = None if probability is None else np.asarray(probability)[order, i]
        for a, b in _runs(column, frames):
            if column[a] == UNLABELLED:
                continue
            record = {"individual": str(individual), "behaviour": str(names[column[a]]),
                      "start_frame": int(frames[a]), "stop_frame": int(frames[b - 1])}
            if prob is not None:
                record["probability"] = float(np.nanmean(prob[a:b])) if np.isfinite(
                    prob[a:b]).any() else float("nan")
            records.append(record)
    columns = BOUT_COLUMNS + (["probability"] if probability is not None else [])
    out = pd.DataFrame.from_records(records, columns=columns)
    out[["start_frame", "stop_frame"]] = out[["start_frame", "stop_frame"]].astype(np.int64)
    return out.sort_values(["individual", "start_frame"], kind="stable").reset_index(drop=True)


def check_bouts(
    bouts: pd.DataFrame,
    individual_names: Sequence[str] | None = None,
    frame_range: tuple[int, int] | None = None,
    source: str = "the bouts",
    allow_overlap: bool = False,
) -> pd.DataFrame:
    """Validate a bouts table (columns, types, start <= stop, known individuals, frames inside
    ``frame_range`` = (first, last) video frame, no overlapping bouts of one individual unless
    allowed); returns it with normalised dtypes. Errors name ``source`` and the offending row."""
    missing = [c for c in BOUT_COLUMNS if c not in bouts.columns]
    if missing:
        raise SkelmaeError(f"{source}: missing column(s) {missing}; need {BOUT_COLUMNS}")
    out = bouts.copy()
    for column in ("start_frame", "stop_frame"):
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = bouts[column].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise SkelmaeError(f"{source}: row {row}: {column} {value!r} is not a whole frame "
                               "number")
        out[column] = values.astype(np.int64)
    out["individual"] = out["individual"].astype(str)
    out["behaviour"] = out["behaviour"].astype(str)
    reversed_ = out["stop_frame"] < out["start_frame"]
    if reversed_.any():
        row = int(np.flatnonzero(reversed_.to_numpy())[0])
        raise SkelmaeError(f"{source}: row {row}: stop_frame {out['stop_frame'].iloc[row]} is "
                           f"before start_frame {out['start_frame'].iloc[row]}")
    if individual_names is not None:
        unknown = sorted(set(out["individual"]) - {str(n) for n in individual_names})
        if unknown:
            raise SkelmaeError(f"{source}: unknown individual(s) {unknown}; the tracks have "
                               f"{[str(n) for n in individual_names]}")
    if frame_range is not None and len(out):
        first, last = frame_range
        outside = (out["start_frame"] < first) | (out["stop_frame"] > last)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise SkelmaeError(
                f"{source}: row {row}: frames {out['start_frame'].iloc[row]}-"
                f"{out['stop_frame'].iloc[row]} are outside the recording's frames "
                f"{first}-{last}")
    if not allow_overlap:
        for individual, group in out.groupby("individual", sort=False):
            g = group.sort_values("start_frame")
            overlap = g["start_frame"].to_numpy()[1:] <= g["stop_frame"].to_numpy()[:-1]
            if overlap.any():
                k = int(np.flatnonzero(overlap)[0])
                a, b = g.iloc[k], g.iloc[k + 1]
                raise SkelmaeError(
                    f"{source}: overlapping bouts of {individual}: {a['behaviour']} "
                    f"{a['start_frame']}-{a['stop_frame']} and {b['behaviour']} "
                    f"{b['start_frame']}-{b['stop_frame']}")
    return out


def bouts_to_frames(
    bouts: pd.DataFrame,
    frame_index: np.ndarray,
    individual_names: Sequence[str],
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Per-frame codes (frames, individuals) and the behaviour names they index, from bouts
    (validated against the individuals; bouts may reach past the tracked frames, rows outside
    every bout stay -1). ``names`` fixes the order of behaviours (default: sorted)."""
    bouts = check_bouts(bouts, individual_names, allow_overlap=False)
    found = sorted(set(bouts["behaviour"]))
    names = list(names) if names is not None else found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise SkelmaeError(f"behaviours {unknown} are not among {names}")
    lookup = {n: k for k, n in enumerate(names)}
    frame_index = np.asarray(frame_index)
    codes = np.full((len(frame_index), len(individual_names)), UNLABELLED, np.int64)
    column_of = {str(n): i for i, n in enumerate(individual_names)}
    for row in bouts.itertuples(index=False):
        inside = (frame_index >= row.start_frame) & (frame_index <= row.stop_frame)
        codes[inside, column_of[row.individual]] = lookup[row.behaviour]
    return codes, names


def remove_short_bouts(codes: np.ndarray, frame_index: np.ndarray, min_frames: int) -> np.ndarray:
    """Relabel bouts shorter than ``min_frames`` rows with a neighbouring bout's label.

    Within each stretch of consecutive video frames, the shortest labelled run below the limit
    that touches another labelled run is merged into the longer of its labelled neighbours,
    until none is left, so a flickering label becomes the surrounding behaviour. Unlabelled
    rows (-1) are never relabelled, and a short bout with no labelled neighbour stays."""
    if not isinstance(min_frames, (int, np.integer)) or min_frames < 1:
        raise SkelmaeError(f"min_bout_frames must be a positive integer, got {min_frames!r}")
    codes = np.array(codes, copy=True)
    if min_frames == 1 or codes.size == 0:
        return codes
    order = _order(frame_index)
    frames = np.asarray(frame_index)[order]
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    segments = zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(frames)].tolist())
    for a, b in segments:
        for i in range(codes.shape[1]):
            rows = order[a:b]
            codes[rows, i] = _merge_short_runs(codes[rows, i], min_frames)
    return codes


def _merge_short_runs(column: np.ndarray, min_frames: int) -> np.ndarray:
    """The rule of :func:`remove_short_bouts` on one stretch, in O(runs log runs): runs in a
    linked list, candidates in a heap keyed (length, first row) -- the order of "shortest
    first, leftmost on ties". A run that is unlabelled, or whose neighbours are all
    unlabelled, can never become eligible (unlabelled runs never change), so it is dropped."""
    import heapq

    column = np.asarray(column)
    n = len(column)
    if n == 0:
        return column.copy()
    change = np.r_[True, column[1:] != column[:-1]]
    starts = np.flatnonzero(change)
    label = column[starts].tolist()
    length = (np.r_[starts[1:], n] - starts).tolist()
    start = starts.tolist()
    r = len(starts)
    prev = list(range(-1, r - 1))
    nxt = list(range(1, r + 1))
    nxt[-1] = -1
    alive = [True] * r
    heap = [(length[k], start[k], k) for k in range(r) if length[k] < min_frames
            and label[k] != UNLABELLED]
    heapq.heapify(heap)

    def unlink(k: int) -> None:
        alive[k] = False
        p, q = prev[k], nxt[k]
        if p >= 0:
            nxt[p] = q
        if q >= 0:
            prev[q] = p

    while heap:
        size, first, k = heapq.heappop(heap)
        if not alive[k] or size != length[k] or first != start[k]:
            continue  # stale entry
        neighbours = [j for j in (prev[k], nxt[k]) if j >= 0 and label[j] != UNLABELLED]
        if not neighbours:
            continue
        j = max(neighbours, key=lambda m: length[m])
        # k takes j's label: k joins j, and the run on k's other side if it has that label
        other = nxt[k] if j == prev[k] else prev[k]
        length[j] += length[k]
        start[j] = min(start[j], start[k])
        unlink(k)
        if other >= 0 and label[other] == label[j]:
            length[j] += length[other]
            start[j] = min(start[j], start[other])
            unlink(other)
        if length[j] < min_frames:
            heapq.heappush(heap, (length[j], start[j], j))
    out = np.empty_like(column)
    for k in range(r):
        if alive[k]:
            out[start[k]:start[k] + length[k]] = label[k]
    return out
