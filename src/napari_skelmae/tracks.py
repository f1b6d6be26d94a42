"""PoseTracks: the one data model that flows from readers to layers, models and files.

Arrays follow the layout that sleap-io's ``Labels.numpy()`` returns, because it is the one
most users already know: ``positions`` is (frames, individuals, keypoints, space). Missing
points are NaN (never 0, which is a real coordinate). Every instance is validated when it is
built, so code downstream can trust shapes and dtypes without re-checking.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TracksValidationError

__all__ = ["PoseTracks"]

Selector = int | str | slice | Sequence[int] | Sequence[str] | np.ndarray | None


def _as_path(p: str | os.PathLike | None) -> Path | None:
    return None if p is None else Path(p)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class PoseTracks:
    """Keypoint tracks of one recording.

    Attributes
    ----------
    positions
        float32 (frames, individuals, keypoints, space), NaN where a point is missing;
        space is 2 (x, y) or 3 (x, y, z), in the source's units (pixels for video trackers).
    confidence
        float32 (frames, individuals, keypoints), NaN where the source has no score.
    keypoint_names, individual_names
        Unique names, in the order of the axes.
    edges
        int (edges, 2): index pairs into ``keypoint_names`` (the skeleton; may be empty).
    frame_index
        int64 (frames,): the video frame of each row. Unique, but neither contiguous nor
        sorted necessarily (labelled datasets hold sparse frames).
    fps
        Frames per second of the video, or None when unknown.
    source_path, video_path
        Where the tracks and the video came from (None when unknown).
    metadata
        Free-form, JSON-serialisable facts from the reader (format, scorer, ...).
    """

    positions: np.ndarray
    confidence: np.ndarray | None = None
    keypoint_names: Sequence[str] | None = None
    individual_names: Sequence[str] | None = None
    edges: np.ndarray | Sequence[tuple[int, int]] | None = None
    frame_index: np.ndarray | Sequence[int] | None = None
    fps: float | None = None
    source_path: str | os.PathLike | None = None
    video_path: str | os.PathLike | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass: normalise fields once, here
        pos = np.asarray(self.positions)
        if pos.ndim != 4:
            raise TracksValidationError(
                "positions must be 4-D (frames, individuals, keypoints, space), "
                f"got shape {pos.shape}"
            )
        n_frames, n_ind, n_kp, n_space = pos.shape
        if n_space not in (2, 3):
            raise TracksValidationError(f"space axis must have size 2 or 3, got {n_space}")
        if not np.issubdtype(pos.dtype, np.number):
            raise TracksValidationError(f"positions must be numeric, got dtype {pos.dtype}")
        pos = np.array(pos, dtype=np.float32, order="C", copy=True)
        if np.isinf(pos).any():
            raise TracksValidationError(
                "positions contain infinite values; use NaN for missing points"
            )
        # A point is missing as a whole: if one coordinate is NaN, all are.
        missing = np.isnan(pos).any(axis=-1)
        pos[missing] = np.nan
        set_(self, "positions", pos)

        if self.confidence is None:
            conf = np.full((n_frames, n_ind, n_kp), np.nan, dtype=np.float32)
        else:
            conf = np.ascontiguousarray(self.confidence, dtype=np.float32)
            if conf.shape != (n_frames, n_ind, n_kp):
                raise TracksValidationError(
                    f"confidence shape {conf.shape} does not match positions "
                    f"(frames, individuals, keypoints) = {(n_frames, n_ind, n_kp)}"
                )
        if missing.any():  # a missing point has no confidence either
            conf = conf.copy()
            conf[missing] = np.nan
        set_(self, "confidence", conf)

        kp = _names(self.keypoint_names, n_kp, "keypoint", "kp")
        ind = _names(self.individual_names, n_ind, "individual", "individual_")
        set_(self, "keypoint_names", kp)
        set_(self, "individual_names", ind)

        edges = np.zeros((0, 2), dtype=np.int64) if self.edges is None else self.edges
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2) if len(edges) else np.zeros(
            (0, 2), dtype=np.int64
        )
        if edges.size and (edges.min() < 0 or edges.max() >= n_kp):
            raise TracksValidationError(
                f"skeleton edges refer to keypoint indices outside 0..{n_kp - 1}: {edges.tolist()}"
            )
        edges.setflags(write=False)
        set_(self, "edges", edges)

        if self.frame_index is None:
            fidx = np.arange(n_frames, dtype=np.int64)
        else:
            fidx = np.asarray(self.frame_index)
            if fidx.shape != (n_frames,):
                raise TracksValidationError(
                    f"frame_index has shape {fidx.shape}, expected ({n_frames},)"
                )
            if n_frames and not np.issubdtype(fidx.dtype, np.integer):
                if not np.all(np.isfinite(fidx)) or np.any(fidx != np.round(fidx)):
                    raise TracksValidationError("frame_index must hold whole frame numbers")
            fidx = fidx.astype(np.int64)
            if n_frames and fidx.min() < 0:
                raise TracksValidationError("frame_index must be >= 0")
            if len(np.unique(fidx)) != n_frames:
                raise TracksValidationError("frame_index holds the same video frame twice")
        set_(self, "frame_index", fidx)

        if self.fps is not None:
            fps = float(self.fps)
            if not np.isfinite(fps) or fps <= 0:
                raise TracksValidationError(f"fps must be a positive number, got {self.fps!r}")
            set_(self, "fps", fps)
        set_(self, "source_path", _as_path(self.source_path))
        set_(self, "video_path", _as_path(self.video_path))
        set_(self, "metadata", dict(self.metadata or {}))

    # ------------------------------------------------------------------ shape facts
    @property
    def n_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def n_individuals(self) -> int:
        return self.positions.shape[1]

    @property
    def n_keypoints(self) -> int:
        return self.positions.shape[2]

    @property
    def n_space(self) -> int:
        return self.positions.shape[3]

    @property
    def is_3d(self) -> bool:
        return self.n_space == 3

    @property
    def missing(self) -> np.ndarray:
        """bool (frames, individuals, keypoints): True where a point is missing."""
        return np.isnan(self.positions).any(axis=-1)

    @property
    def missing_fraction(self) -> float:
        m = self.missing
        return float(m.mean()) if m.size else 1.0

    @property
    def edge_names(self) -> list[tuple[str, str]]:
        return [(self.keypoint_names[a], self.keypoint_names[b]) for a, b in self.edges]

    @property
    def time(self) -> np.ndarray:
        """Seconds of each row from frame 0 (frame numbers when fps is unknown)."""
        return self.frame_index / self.fps if self.fps else self.frame_index.astype(float)

    # ------------------------------------------------------------------ changes
    def replace(self, **changes: Any) -> PoseTracks:
        """A validated copy with some fields changed (a dataclass ``replace``)."""
        return dataclasses.replace(self, **changes)

    def sel(
        self,
        frames: Selector = None,
        individuals: Selector = None,
        keypoints: Selector = None,
    ) -> PoseTracks:
        """Select rows, individuals and keypoints.

        ``frames`` selects by *video frame number* (``frame_index`` values) when given ints,
        or by a boolean mask / slice over rows. Individuals and keypoints take names or
        positions. Edges between kept keypoints are kept and re-indexed.
        """
        rows = self._frame_rows(frames)
        ii = _index(individuals, self.individual_names, "individual")
        kk = _index(keypoints, self.keypoint_names, "keypoint")
        remap = {int(old): new for new, old in enumerate(kk)}
        edges = [(remap[a], remap[b]) for a, b in self.edges.tolist() if a in remap and b in remap]
        return self.replace(
            positions=self.positions[rows][:, ii][:, :, kk],
            confidence=self.confidence[rows][:, ii][:, :, kk],
            keypoint_names=[self.keypoint_names[k] for k in kk],
            individual_names=[self.individual_names[i] for i in ii],
            edges=edges,
            frame_index=self.frame_index[rows],
        )

    def _frame_rows(self, frames: Selector) -> np.ndarray:
        if frames is None:
            return np.arange(self.n_frames)
        if isinstance(frames, slice):
            return np.arange(self.n_frames)[frames]
        arr = np.asarray(frames)
        if arr.dtype == bool:
            if arr.shape != (self.n_frames,):
                raise TracksValidationError(
                    f"a boolean frame mask must have {self.n_frames} entries, got {arr.shape}"
                )
            return np.flatnonzero(arr)
        arr = np.atleast_1d(arr).astype(np.int64)
        lookup = {int(f): r for r, f in enumerate(self.frame_index)}
        bad = [int(f) for f in arr if int(f) not in lookup]
        if bad:
            raise TracksValidationError(f"frames not in these tracks: {bad[:10]}")
        return np.array([lookup[int(f)] for f in arr], dtype=np.int64)

    def sorted_by_frame(self) -> PoseTracks:
        order = np.argsort(self.frame_index, kind="stable")
        if np.all(order == np.arange(self.n_frames)):
            return self
        return self.replace(
            positions=self.positions[order],
            confidence=self.confidence[order],
            frame_index=self.frame_index[order],
        )

    # ------------------------------------------------------------------ comparison
    def equals(self, other: object, *, check_paths: bool = True) -> bool:
        """Exact equality of arrays (NaN equal to NaN), names, skeleton and facts."""
        if not isinstance(other, PoseTracks):
            return False
        same = (
            self.positions.shape == other.positions.shape
            and np.array_equal(self.positions, other.positions, equal_nan=True)
            and np.array_equal(self.confidence, other.confidence, equal_nan=True)
            and self.keypoint_names == other.keypoint_names
            and self.individual_names == other.individual_names
            and np.array_equal(self.edges, other.edges)
            and np.array_equal(self.frame_index, other.frame_index)
            and self.fps == other.fps
        )
        if same and check_paths:
            same = self.source_path == other.source_path and self.video_path == other.video_path
        return bool(same)

    def __repr__(self) -> str:
        fps = f"{self.fps:g} fps" if self.fps else "fps unknown"
        src = self.source_path.name if self.source_path else "no file"
        return (
            f"PoseTracks({self.n_frames} frames x {self.n_individuals} individuals x "
            f"{self.n_keypoints} keypoints x {self.n_space}D, {len(self.edges)} edges, {fps}, "
            f"{self.missing_fraction:.1%} missing, from {src})"
        )

    # ------------------------------------------------------------------ movement / xarray
    def to_movement(self):
        """An xarray Dataset in movement's poses layout (dims time, space, keypoint, individual).

        Needs xarray (``pip install napari-skelmae[movement]``); movement itself is not needed.
        """
        from .io.movement import tracks_to_dataset

        return tracks_to_dataset(self)

    @classmethod
    def from_movement(cls, ds, **kwargs: Any) -> PoseTracks:
        """Build from a movement poses Dataset (singular or older plural dim names)."""
        from .io.movement import dataset_to_tracks

        return dataset_to_tracks(ds, **kwargs)


def _names(names: Iterable[str] | None, n: int, what: str, prefix: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"{prefix}{i}" for i in range(n))
    out = tuple(str(x) for x in names)
    if len(out) != n:
        raise TracksValidationError(f"{len(out)} {what} names given for {n} {what}s")
    if len(set(out)) != len(out):
        dup = sorted({x for x in out if out.count(x) > 1})
        raise TracksValidationError(f"{what} names must be unique; repeated: {dup}")
    return out


def _index(sel: Selector, names: tuple[str, ...], what: str) -> np.ndarray:
    n = len(names)
    if sel is None:
        return np.arange(n)
    if isinstance(sel, slice):
        return np.arange(n)[sel]
    if isinstance(sel, (str, int, np.integer)):
        sel = [sel]
    arr = np.asarray(sel)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise TracksValidationError(f"a boolean {what} mask must have {n} entries")
        return np.flatnonzero(arr)
    out = []
    for s in arr.tolist():
        if isinstance(s, str):
            if s not in names:
                raise TracksValidationError(f"unknown {what} {s!r}; known: {list(names)}")
            out.append(names.index(s))
        else:
            if not -n <= int(s) < n:
                raise TracksValidationError(f"{what} index {s} out of range for {n} {what}s")
            out.append(int(s) % n)
    return np.asarray(out, dtype=np.int64)
