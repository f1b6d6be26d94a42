"""Fixed-length, egocentric training windows cut from PoseTracks on demand.

Every recording is put on one time grid at ``WindowConfig.model_fps`` (linear interpolation on
each keypoint, short gaps bridged, long gaps left missing), so that one model frame means the
same time span for a 25 fps fly and a 250 fps fish. A window is ``n_frames`` consecutive model
frames of one individual, translated and rotated per frame into the animal's own frame of
reference (centre keypoint at the origin, tail -> head along +y) and divided by the body length.

A batch is a dict of torch tensors (see :data:`BATCH_KEYS`); ``x`` is 0 and ``valid`` False
wherever a keypoint is missing, below the confidence threshold, or its frame has no reference
(centre or heading missing). Windows are computed in ``__getitem__`` from the (gap-bridged)
source arrays: a dataset holds the recordings plus an index of (recording, individual, start),
never the windows themselves. See docs/windows.md for the choices and their reasons.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import SkelmaeError
from .tracks import PoseTracks

__all__ = [
    "BATCH_KEYS",
    "Normalisation",
    "Normalised",
    "TimeGrid",
    "WindowConfig",
    "WindowDataset",
    "denormalise_window",
    "iter_windows",
    "normalise_window",
    "resolve_normalisation",
    "split_train_val",
    "window_reference",
]

logger = logging.getLogger(__name__)

#: Keys of a sample / batch and what they hold (B = batch, T = model frames, V = keypoints,
#: C = space). Only ``x`` and ``valid`` are model inputs; the rest is bookkeeping.
BATCH_KEYS = {
    "x": "float32 (B, T, V, C): egocentric coordinates, 0 where invalid",
    "valid": "bool (B, T, V): False for missing / low-confidence points and reference-less frames",
    "recording": "int64 (B,): position of the recording in the list the dataset was built from",
    "individual": "int64 (B,): individual axis index in that recording",
    "start_frame": "int64 (B,): video frame nearest to the window's first model frame",
    "model_start": "int64 (B,): model-frame index (on the recording's TimeGrid) of that frame",
    "center": "float32 (B, T, C): centre subtracted per frame, source units, NaN if none",
    "angle": "float32 (B, T): rotation applied per frame (radians), NaN if no heading",
    "scale": "float32 (B,): the divisor (body length in source units, or 1)",
}

SCALES = ("none", "body_length")
#: "frame": every frame in its own egocentric frame (posture only); "window": the whole window
#: in the egocentric frame of one reference frame (its middle), so locomotion and turning stay
REFERENCES = ("frame", "window")
_SNAP = 1e-6  # model times this close (in video frames) to a video frame are that frame


# ------------------------------------------------------------------------------- config
@dataclasses.dataclass(frozen=True)
class WindowConfig:
    """How recordings become windows. Defaults suit flies and rodents filmed at 25-60 fps.

    Attributes
    ----------
    model_fps
        Rate every recording is resampled to (model frames per second).
    window_s, stride_s
        Window length and step between training windows, in seconds.
    min_valid_fraction
        Training windows with a smaller fraction of valid (frame, keypoint) entries are skipped.
    confidence_threshold
        Points scored below it are invalid (None keeps all; unknown scores are always kept).
    center
        ``"auto"`` (detect from names), ``"centroid"`` (mean of the frame's valid keypoints),
        a keypoint name, or several names whose mean is the centre.
    heading
        ``"auto"``, ``(tail_keypoint, head_keypoint)`` rotated to point along +y, or None for
        no rotation.
    scale
        ``"none"`` (source units) or ``"body_length"`` (divide by the recording's median
        tail-head distance).
    reference
        ``"window"``: one centre and heading per window, those of its middle frame (or the
        tracked frame nearest to it), so the window keeps the animal's own translation and
        turning (walking vs standing; MAMP's motion targets, as the papers centre whole
        sequences). ``"frame"``: each frame centred and rotated on its own (posture only).
    max_gap_s
        Missing stretches up to this long are bridged by linear interpolation.
    temporal_patch
        Frames per model token; the window length is rounded up to a multiple of it.
    """

    model_fps: float = 30.0
    window_s: float = 64 / 30
    stride_s: float = 32 / 30
    min_valid_fraction: float = 0.5
    confidence_threshold: float | None = None
    center: str | tuple[str, ...] = "auto"
    heading: str | tuple[str, str] | None = "auto"
    scale: str = "body_length"
    max_gap_s: float = 0.1
    temporal_patch: int = 4
    reference: str = "frame"

    def __post_init__(self) -> None:
        for name in ("model_fps", "window_s", "stride_s"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise SkelmaeError(f"WindowConfig.{name} must be a positive number, got {value!r}")
        if not _is_number(self.min_valid_fraction) or not 0 <= self.min_valid_fraction <= 1:
            raise SkelmaeError(
                "WindowConfig.min_valid_fraction must be in [0, 1], "
                f"got {self.min_valid_fraction!r}"
            )
        if self.confidence_threshold is not None and not _is_number(self.confidence_threshold):
            raise SkelmaeError(
                "WindowConfig.confidence_threshold must be a number or None, "
                f"got {self.confidence_threshold!r}"
            )
        if not _is_number(self.max_gap_s) or self.max_gap_s < 0:
            raise SkelmaeError(f"WindowConfig.max_gap_s must be >= 0, got {self.max_gap_s!r}")
        if not isinstance(self.temporal_patch, int) or self.temporal_patch < 1:
            raise SkelmaeError(
                "WindowConfig.temporal_patch must be a positive integer, "
                f"got {self.temporal_patch!r}"
            )
        if self.scale not in SCALES:
            raise SkelmaeError(f"WindowConfig.scale must be one of {SCALES}, got {self.scale!r}")
        if self.reference not in REFERENCES:
            raise SkelmaeError(
                f"WindowConfig.reference must be one of {REFERENCES}, got {self.reference!r}"
            )
        center = self.center
        if not isinstance(center, str):
            center = tuple(center) if isinstance(center, Sequence) else center
            if not center or not all(isinstance(c, str) for c in center):
                raise SkelmaeError(
                    "WindowConfig.center must be 'auto', 'centroid', a keypoint name or a list "
                    f"of keypoint names, got {self.center!r}"
                )
        object.__setattr__(self, "center", center)
        heading = self.heading
        if heading is not None and heading != "auto":
            heading = tuple(heading) if isinstance(heading, Sequence) else heading
            if (
                not isinstance(heading, tuple)
                or len(heading) != 2
                or not all(isinstance(h, str) for h in heading)
            ):
                raise SkelmaeError(
                    "WindowConfig.heading must be 'auto', None or (tail_keypoint, head_keypoint), "
                    f"got {self.heading!r}"
                )
        object.__setattr__(self, "heading", heading)

    @property
    def n_frames(self) -> int:
        """Window length T in model frames: a whole number of temporal patches."""
        frames = max(1, round(self.window_s * self.model_fps))
        return -(-frames // self.temporal_patch) * self.temporal_patch

    @property
    def stride_frames(self) -> int:
        return max(1, round(self.stride_s * self.model_fps))

    @classmethod
    def for_fps(cls, fps: float, **overrides: Any) -> WindowConfig:
        """Defaults for recordings filmed at ``fps``.

        Below 100 fps (flies, rodents): the class defaults (30 Hz, 64-frame windows of 2.1 s).
        From 100 fps up the camera was chosen for fast movements (larval zebrafish bouts last
        ~100-200 ms with 20-40 Hz tail beats), so the model rate is the source rate divided by
        a whole number into 100-200 Hz (250 -> 125 Hz: every other frame, no blur), windows
        stay 64 frames (~0.5 s, a bout with its surroundings) and only gaps up to 20 ms are
        bridged (a longer one could hide a bout).
        """
        if not _is_number(fps) or not fps > 0:
            raise SkelmaeError(f"fps must be a positive number, got {fps!r}")
        if fps < 100:
            return cls(**overrides)
        model_fps = fps / math.floor(fps / 100)
        preset = dict(
            model_fps=model_fps, window_s=64 / model_fps, stride_s=32 / model_fps, max_gap_s=0.02
        )
        return cls(**{**preset, **overrides})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("center", "heading"):
            if isinstance(d[key], tuple):
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SkelmaeError(
                f"unknown WindowConfig keys {unknown}; known keys: {sorted(known)}"
            )
        return cls(**d)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    ) and math.isfinite(value)


# ------------------------------------------------------------------------ normalisation
@dataclasses.dataclass(frozen=True)
class Normalisation:
    """The egocentric frame for one skeleton, resolved to keypoint indices.

    ``center``: indices whose mean is the centre of each frame (missing if any of them is), or
    None for the centroid of the frame's valid keypoints. ``heading``: (tail, head) indices;
    each frame is rotated so that tail -> head points along +y; None = no rotation. ``scale``:
    ``"none"`` or ``"body_length"``. ``reference``: ``"frame"`` or ``"window"`` (one centre and
    heading for the whole window, see :class:`WindowConfig`).
    """

    keypoint_names: tuple[str, ...]
    center: tuple[int, ...] | None
    heading: tuple[int, int] | None
    scale: str = "none"
    reference: str = "frame"

    def describe(self) -> str:
        names = self.keypoint_names
        centre = (
            "centroid of the valid keypoints"
            if self.center is None
            else " + ".join(names[i] for i in self.center)
        )
        heading = (
            "no rotation"
            if self.heading is None
            else f"{names[self.heading[0]]} -> {names[self.heading[1]]} along +y"
        )
        return (f"centre {centre}; heading {heading}; scale {self.scale}; one reference per "
                f"{self.reference}")

    def to_dict(self) -> dict[str, Any]:
        """Keypoints by name, so that a saved model can check the skeleton it meets."""
        names = self.keypoint_names
        return {
            "keypoint_names": list(names),
            "center": None if self.center is None else [names[i] for i in self.center],
            "heading": None if self.heading is None else [names[i] for i in self.heading],
            "scale": self.scale,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalisation:
        known = {"keypoint_names", "center", "heading", "scale", "reference"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SkelmaeError(f"unknown Normalisation keys {unknown}; known keys: {sorted(known)}")
        names = tuple(d["keypoint_names"])
        center = None if d.get("center") is None else _indices(d["center"], names, "centre")
        heading = None if d.get("heading") is None else _indices(d["heading"], names, "heading")
        return cls(names, center, heading, d.get("scale", "none"), d.get("reference", "frame"))


_LIMB = ("leg", "wing", "paw", "ear", "eye", "arm", "hand", "foot", "tail", "knee", "elbow",
         "wrist", "ankle", "antenna", "claw", "fin", "toe", "finger", "shoulder")


def _tokens(name: str) -> list[str]:
    """``forelegL4`` -> [foreleg, l, 4]; ``BASE_TAIL`` -> [base, tail]; ``head_rostral``."""
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    s = re.sub(r"([A-Za-z])(\d)|(\d)([A-Za-z])", r"\1\3 \2\4", s)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


def _is_lateral(tokens: list[str]) -> bool:
    return any(t in ("l", "r") or t.startswith(("left", "right")) for t in tokens)


def _is_limb(tokens: list[str]) -> bool:
    return any(t.startswith(_LIMB) or t.endswith(_LIMB) for t in tokens)


# Each rule: (description, predicate on tokens), in priority order.
_CENTRE_RULES = (
    ("thorax", lambda t: "thorax" in t),
    ("centroid", lambda t: "centroid" in t),
    ("center", lambda t: "center" in t or "centre" in t),
    ("body", lambda t: any(x in ("body", "midbody", "bodycenter", "bodycentre") for x in t)),
    ("spine", lambda t: any(x.startswith("spine") or x == "midspine" for x in t)),
    ("back", lambda t: "back" in t),
    ("mid", lambda t: "mid" in t),
)
_TAIL_RULES = (
    ("abdomen", lambda t: any(x.startswith("abdomen") for x in t)),
    ("tail base", lambda t: any(x in ("tailbase", "basetail", "tailroot") for x in t)
     or ("tail" in t and ("base" in t or "root" in t))),
    ("caudal", lambda t: "caudal" in t),
    ("rump", lambda t: "rump" in t),
    ("first tail point", lambda t: t in (["tail", "0"], ["tail0"], ["tail", "1"], ["tail1"])),
    ("tail", lambda t: t == ["tail"]),
    ("hip", lambda t: "hip" in t or "hips" in t or "pelvis" in t),
    ("posterior", lambda t: "posterior" in t),
)
_HEAD_RULES = (
    ("snout", lambda t: "snout" in t),
    ("nose", lambda t: "nose" in t),
    ("rostral", lambda t: "rostral" in t),
    ("head", lambda t: "head" in t),
    ("neck", lambda t: "neck" in t),
    ("anterior", lambda t: "anterior" in t),
)


def _find(names: Sequence[str], rules, exclude=(), allow_limbs: bool = True) -> int | None:
    """First rule with a match wins; several matches of one rule (spine1..3): the middle one."""
    tokens = [_tokens(n) for n in names]
    for _, rule in rules:
        hits = [
            i for i, t in enumerate(tokens)
            if i not in exclude and not _is_lateral(t) and (allow_limbs or not _is_limb(t))
            and rule(t)
        ]
        if hits:
            return hits[(len(hits) - 1) // 2]
    return None


def _indices(names: Sequence[str] | str, known: Sequence[str], what: str) -> tuple[int, ...]:
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SkelmaeError(f"{what} keypoint(s) {unknown} not in the skeleton {list(known)}")
    return tuple(known.index(n) for n in names)


def resolve_normalisation(
    tracks: PoseTracks | Sequence[str], config: WindowConfig | None = None
) -> Normalisation:
    """Choose centre and heading keypoints from the config, or by name when it says "auto".

    Auto centre: a thorax / centroid / center / body / spine / back / mid keypoint (not a limb,
    not left/right), else the midpoint of the heading pair, else the centroid. Auto heading:
    the first tail-like keypoint (abdomen, tail base, caudal, rump, tail0, hip) to the first
    head-like one (snout, nose, rostral, head, neck); without both, no rotation (logged).
    """
    config = config or WindowConfig()
    names = tuple(tracks.keypoint_names if isinstance(tracks, PoseTracks) else tracks)

    if config.heading is None:
        heading = None
    elif config.heading == "auto":
        tail = _find(names, _TAIL_RULES)
        head = None if tail is None else _find(names, _HEAD_RULES, exclude=(tail,))
        heading = None if head is None else (tail, head)
        if heading is None:
            logger.warning(
                "windows: no rotation: no %s keypoint among %s (set WindowConfig.heading to "
                "(tail_keypoint, head_keypoint) to rotate)",
                "tail-like" if tail is None else "head-like", list(names),
            )
    else:
        heading = _indices(config.heading, names, "heading")
        if heading[0] == heading[1]:
            raise SkelmaeError(f"heading needs two different keypoints, got {config.heading}")

    if config.center == "centroid":
        center = None
    elif config.center == "auto":
        found = _find(names, _CENTRE_RULES, allow_limbs=False)
        center = (found,) if found is not None else heading
    else:
        center = _indices(config.center, names, "centre")

    norm = Normalisation(names, center, heading, config.scale, config.reference)
    logger.info("windows: %s", norm.describe())
    return norm


def _reference(p: np.ndarray, norm: Normalisation) -> tuple[np.ndarray, np.ndarray]:
    """Centre (..., C) and rotation angle (...,) of frames ``p`` (..., V, C); NaN when missing."""
    if norm.center is None:
        present = ~np.isnan(p[..., 0])
        count = present.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(present[..., None], p, 0).sum(-2) / count[..., None]
    elif len(norm.center) == 1:
        centre = p[..., norm.center[0], :]
    else:
        centre = p[..., list(norm.center), :].mean(-2)
    if norm.heading is None:
        angle = np.zeros(p.shape[:-2], dtype=p.dtype)
    else:
        h = p[..., norm.heading[1], :2] - p[..., norm.heading[0], :2]
        angle = (np.pi / 2 - np.arctan2(h[..., 1], h[..., 0])).astype(p.dtype)
        with np.errstate(invalid="ignore"):
            angle[~(np.hypot(h[..., 0], h[..., 1]) > 1e-9)] = np.nan  # NaN or a zero vector
    return centre, angle


class Normalised(NamedTuple):
    x: np.ndarray  # (..., T, V, C) egocentric, 0 where invalid
    valid: np.ndarray  # (..., T, V)
    center: np.ndarray  # (..., T, C)
    angle: np.ndarray  # (..., T)


def normalise_window(
    positions: np.ndarray, normalisation: Normalisation, scale: float | np.ndarray = 1.0
) -> Normalised:
    """Egocentric coordinates of ``positions`` (..., T, V, C), NaN = missing.

    Per frame: subtract the centre, rotate about z by ``angle`` (heading to +y), divide by
    ``scale``. With ``reference="frame"`` each frame has its own centre and angle, and a frame
    whose centre or heading is missing becomes entirely invalid; with ``"window"`` every frame
    takes those of the window's reference frame (see :func:`window_reference`).
    """
    p = np.asarray(positions, dtype=np.float32)
    centre, angle = _reference(p, normalisation)
    if normalisation.reference == "window":
        centre, angle = window_reference(centre, angle)
    d = p - centre[..., None, :]
    if normalisation.heading is not None:
        c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
        dx, dy = d[..., 0].copy(), d[..., 1]
        d[..., 0] = c * dx - s * dy
        d[..., 1] = s * dx + c * dy
    scale = np.asarray(scale, dtype=np.float32)
    d /= scale.reshape(scale.shape + (1,) * (d.ndim - scale.ndim))
    valid = ~np.isnan(d[..., 0])
    d[~valid] = 0.0
    return Normalised(d, valid, centre, angle)


def window_reference(centre: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame references (..., T, C) and (..., T) -> those of one frame, repeated over T.

    The frame is the middle one, or the frame with a reference nearest to it (the earlier on a
    tie); a window without any stays NaN (all invalid)."""
    t = angle.shape[-1]
    ok = np.isfinite(angle) & np.isfinite(centre).all(-1)
    distance = np.abs(np.arange(t) - (t - 1) / 2.0) + np.arange(t) * 1e-6
    pick = np.where(ok, distance, np.inf).argmin(-1)[..., None]  # (..., 1)
    ref_angle = np.take_along_axis(angle, pick, -1)
    ref_centre = np.take_along_axis(centre, pick[..., None], -2)
    ref_angle = np.where(ok.any(-1, keepdims=True), ref_angle, np.nan)
    return (np.broadcast_to(ref_centre, centre.shape).copy(),
            np.broadcast_to(ref_angle, angle.shape).copy())


def denormalise_window(x, center, angle, scale=1.0):
    """Back to source coordinates: the inverse of :func:`normalise_window`.

    Takes numpy arrays or torch tensors (a batch's ``center``, ``angle``, ``scale``): ``x``
    (..., T, V, C), ``center`` (..., T, C), ``angle`` (..., T), ``scale`` scalar or (...,).
    Frames without a reference come back NaN.
    """
    if torch.is_tensor(x):
        def as_x(a):
            return torch.as_tensor(a, dtype=x.dtype, device=x.device)

        center, angle, scale = as_x(center), as_x(angle), as_x(scale)
        cos, sin, stack = torch.cos, torch.sin, torch.stack
    else:
        x = np.asarray(x, dtype=np.float32)
        center, angle = np.asarray(center, np.float32), np.asarray(angle, np.float32)
        scale = np.asarray(scale, np.float32)
        cos, sin, stack = np.cos, np.sin, np.stack
    y = x * scale.reshape(tuple(scale.shape) + (1,) * (x.ndim - scale.ndim))
    c, s = cos(angle)[..., None], sin(angle)[..., None]
    xy = [c * y[..., 0] + s * y[..., 1], -s * y[..., 0] + c * y[..., 1]]
    if x.shape[-1] == 3:
        xy.append(y[..., 2])
    return stack(xy, -1) + center[..., None, :]


def _body_length(pos: np.ndarray, norm: Normalisation, name: str) -> float:
    """Median tail-head distance over all frames and individuals (source units); without a
    heading pair, the median RMS distance of the keypoints from the centre."""
    if norm.heading is None:
        centre, _ = _reference(pos, norm)
        sq = ((pos - centre[..., None, :]) ** 2).sum(-1)
        with warnings.catch_warnings():  # all-NaN frames give NaN, dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            lengths = np.sqrt(np.nanmean(sq, axis=-1))
    else:
        tail, head = norm.heading
        lengths = np.linalg.norm(pos[..., head, :] - pos[..., tail, :], axis=-1)
    lengths = lengths[np.isfinite(lengths)]
    length = float(np.median(lengths)) if lengths.size else math.nan
    if not length > 0:
        what = (
            "the heading keypoints are never both present" if norm.heading is not None
            else "no frame has keypoints spread around the centre"
        )
        raise SkelmaeError(
            f"{name}: cannot scale by body length: {what}; use WindowConfig(scale='none')"
        )
    return length


# ---------------------------------------------------------------------------- time grid
@dataclasses.dataclass(frozen=True)
class TimeGrid:
    """The model-frame grid of one recording: model frame k is at video frame
    ``first_frame + k * fps / model_fps`` (fractional between video frames).

    Use :meth:`model_frame` on a recording's ``frame_index`` to place each source row on the
    grid (e.g. to interpolate per-model-frame features back to rows).
    """

    fps: float
    model_fps: float
    first_frame: int
    n_frames: int

    @classmethod
    def of(cls, tracks: PoseTracks, config: WindowConfig) -> TimeGrid:
        if tracks.fps is None:
            raise SkelmaeError(
                f"{_recording_name(tracks, 0)}: frame rate unknown; windows need it to put "
                "frames on a time grid: pass fps, e.g. load_tracks(path, fps=30)"
            )
        if tracks.n_frames == 0:
            return cls(tracks.fps, config.model_fps, 0, 0)
        first, last = int(tracks.frame_index.min()), int(tracks.frame_index.max())
        n = math.floor((last - first) * config.model_fps / tracks.fps + _SNAP) + 1
        return cls(tracks.fps, float(config.model_fps), first, n)

    def video_frame(self, model_frame) -> np.ndarray:
        """Fractional video frame of each model frame."""
        return self.first_frame + np.asarray(model_frame, dtype=np.float64) * (
            self.fps / self.model_fps
        )

    def model_frame(self, video_frame) -> np.ndarray:
        """Fractional model frame of each video frame (e.g. ``tracks.frame_index``)."""
        return (np.asarray(video_frame, dtype=np.float64) - self.first_frame) * (
            self.model_fps / self.fps
        )

    def neighbours(
        self, video_frame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(left, right, weight, inside)`` for each video frame: the two model frames
        around it and the weight of ``right`` for linear interpolation between them (the one
        frame when it falls on a model frame; the last frame for a video frame less than a
        model frame past the grid's end, where the grid stops short of the last video
        frame), and whether it is on the grid at all."""
        last = self.n_frames - 1
        position = self.model_frame(video_frame)
        exact = np.abs(position - np.round(position)) < 1e-6
        position = np.where(exact, np.round(position), position)
        inside = (position >= 0) & (position < last + 1)
        position = np.clip(position, 0, max(last, 0))
        left = np.floor(position).astype(np.int64)
        right = np.minimum(left + 1, last)
        return left, right, (position - left).astype(np.float32), inside


# ---------------------------------------------------------------------------- recordings
def _recording_name(tracks: PoseTracks, position: int) -> str:
    return str(tracks.source_path) if tracks.source_path else f"recording {position} (no file)"


def _usable_positions(tracks: PoseTracks, threshold: float | None) -> np.ndarray:
    """Sorted positions with low-confidence points set missing (unknown scores are kept)."""
    tracks = tracks.sorted_by_frame()
    pos = tracks.positions.copy()
    if threshold is not None:
        with np.errstate(invalid="ignore"):
            pos[tracks.confidence < threshold] = np.nan
    return pos


def _bridge_gaps(pos: np.ndarray, frames: np.ndarray, fps: float, max_gap_s: float) -> None:
    """Linearly interpolate, in place, missing stretches of at most ``max_gap_s`` of video.

    The length of a stretch counts missing video frames, including frames with no row.
    """
    valid = ~np.isnan(pos[..., 0])
    if valid.all() or not valid.any():
        return
    n = len(frames)
    rows = np.arange(n).reshape((n,) + (1,) * (valid.ndim - 1))
    prev = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, rows, n)[::-1], axis=0)[::-1]
    fill = ~valid & (prev >= 0) & (nxt < n)
    if not fill.any():
        return
    where = np.nonzero(fill)
    before, after = prev[where], nxt[where]
    f0, f1 = frames[before], frames[after]
    short = (f1 - f0 - 1) / fps <= max_gap_s + 1e-9
    where = tuple(w[short] for w in where)
    before, after, f0, f1 = before[short], after[short], f0[short], f1[short]
    w = ((frames[where[0]] - f0) / (f1 - f0)).astype(np.float32)[:, None]
    p0 = pos[(before,) + where[1:]]
    p1 = pos[(after,) + where[1:]]
    pos[where] = p0 + (p1 - p0) * w


class _Recording:
    """One recording (with at least one row) ready for sampling: gap-bridged positions and
    the mapping from model frames to source rows.

    Memory: the positions (one copy of the source) plus four arrays of one entry per model frame.
    """

    def __init__(self, tracks: PoseTracks, config: WindowConfig, norm: Normalisation, name: str):
        self.name = name
        self.grid = TimeGrid.of(tracks, config)
        self.individual_names = tuple(tracks.individual_names)
        pos = _usable_positions(tracks, config.confidence_threshold)
        frames = np.sort(tracks.frame_index)
        _bridge_gaps(pos, frames, self.grid.fps, config.max_gap_s)
        self.positions = pos
        self.scale = (
            _body_length(pos, norm, name) if norm.scale == "body_length" else 1.0
        )
        # model frame -> the two source rows around it, the weight of the second, and whether
        # the rows are close enough in time to interpolate between them
        target = self.grid.video_frame(np.arange(self.grid.n_frames))
        snapped = np.round(target)
        target = np.where(np.abs(target - snapped) < _SNAP, snapped, target)
        last_row = len(frames) - 1
        left = np.clip(np.searchsorted(frames, target, side="right") - 1, 0, last_row)
        exact = frames[left] == target
        right = np.where(exact, left, np.minimum(left + 1, last_row))
        span = (frames[right] - frames[left]).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = np.where(exact, 0.0, (target - frames[left]) / span)
        self.left = left.astype(np.int64)
        self.right = right.astype(np.int64)
        self.weight = weight.astype(np.float32)
        self.bridged = exact | ((span - 1) / self.grid.fps <= config.max_gap_s + 1e-9)

    def sample(
        self, individuals: np.ndarray, model_frames: np.ndarray, norm: Normalisation
    ) -> Normalised:
        """Windows for ``individuals`` (B,) at ``model_frames`` (B, T); frames off the grid
        are invalid."""
        n = self.grid.n_frames
        inside = (model_frames >= 0) & (model_frames < n)
        k = np.clip(model_frames, 0, n - 1)
        ind = individuals[:, None]
        p0 = self.positions[self.left[k], ind]
        p1 = self.positions[self.right[k], ind]
        p = p0 + (p1 - p0) * self.weight[k][..., None, None]
        p[~(inside & self.bridged[k])] = np.nan
        return normalise_window(p, norm, self.scale)


# ------------------------------------------------------------------------------- dataset
class WindowDataset(Dataset):
    """Training windows from one or several recordings (all individuals of each).

    The index of (recording, individual, start model frame) is computed once; each window is
    computed when asked for. ``dataset[i]`` is a dict of numpy arrays (no batch axis);
    :meth:`collate` stacks samples into a torch batch and :meth:`get_batch` builds a batch
    from indices in one vectorised pass (faster). Keys: :data:`BATCH_KEYS`.
    """

    def __init__(
        self,
        tracks: PoseTracks | Sequence[PoseTracks],
        config: WindowConfig | None = None,
        normalisation: Normalisation | None = None,
    ):
        config = config or WindowConfig()
        recordings = [tracks] if isinstance(tracks, PoseTracks) else list(tracks)
        if not recordings:
            raise SkelmaeError("WindowDataset needs at least one recording")
        recordings = _same_skeleton(recordings)
        norm = normalisation or resolve_normalisation(recordings[0], config)
        if tuple(norm.keypoint_names) != tuple(recordings[0].keypoint_names):
            raise SkelmaeError(
                f"the normalisation is for keypoints {list(norm.keypoint_names)}, the recordings "
                f"have {list(recordings[0].keypoint_names)}"
            )
        self.config = config
        self.normalisation = norm
        self.keypoint_names = tuple(recordings[0].keypoint_names)
        self.edges = recordings[0].edges.copy()
        self.n_channels = recordings[0].n_space
        self.metadata = dict(recordings[0].metadata)

        T = config.n_frames
        self._recordings: list[_Recording | None] = []
        too_short, parts = [], []
        for r, t in enumerate(recordings):
            name = _recording_name(t, r)
            grid = TimeGrid.of(t, config)
            if grid.n_frames < T:
                seconds = (np.ptp(t.frame_index) + 1) / t.fps if t.n_frames else 0.0
                too_short.append(
                    f"{name}: {seconds:.3g} s ({t.n_frames} frames at {t.fps:g} fps) = "
                    f"{grid.n_frames} model frames at {config.model_fps:g} Hz"
                )
                self._recordings.append(None)
                continue
            rec = _Recording(t, config, norm, name)
            self._recordings.append(rec)
            parts.append(self._index_recording(r, rec))
        window = f"one window of {config.window_s:.3g} s = {T} model frames"
        if len(too_short) == len(recordings):
            raise SkelmaeError(f"every recording is shorter than {window}: " + "; ".join(too_short))
        for line in too_short:
            logger.warning("windows: skipping %s, shorter than %s", line, window)
        self._index = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
        if not len(self._index):
            raise SkelmaeError(
                f"no window has at least {config.min_valid_fraction:.0%} valid keypoints "
                "(min_valid_fraction) in "
                f"{[_recording_name(t, r) for r, t in enumerate(recordings)]}"
            )
        self._index.setflags(write=False)

    def _index_recording(self, r: int, rec: _Recording) -> np.ndarray:
        """Rows (r, individual, start) of the windows with enough valid data: O(frames)."""
        cfg, T, V = self.config, self.config.n_frames, len(self.keypoint_names)
        n = rec.grid.n_frames
        starts = np.arange(0, n - T + 1, cfg.stride_frames)
        rows = []
        for i, who in enumerate(rec.individual_names):
            counts = np.zeros(n + 1, np.int64)
            for a in range(0, n, 65536):  # bounded temporary memory on long recordings
                k = np.arange(a, min(a + 65536, n))[None]
                counts[a + 1: a + 1 + k.shape[1]] = rec.sample(np.array([i]), k, self.normalisation
                                                               ).valid[0].sum(-1)
            if counts[1:].sum() == 0:
                logger.warning("windows: skipping individual %r of %s: no valid frame in the "
                               "whole recording", who, rec.name)
                continue
            cum = np.cumsum(counts)
            fraction = (cum[starts + T] - cum[starts]) / (T * V)
            keep = starts[(fraction >= cfg.min_valid_fraction) & (fraction > 0)]
            if not len(keep):
                logger.warning("windows: skipping individual %r of %s: no window with at least "
                               "%.0f%% valid keypoints", who, rec.name,
                               100 * cfg.min_valid_fraction)
            rows.append(np.stack([np.full_like(keep, r), np.full_like(keep, i), keep], 1))
        return np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)

    # ---- facts -----------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self.config.n_frames

    @property
    def n_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def index(self) -> np.ndarray:
        """int64 (windows, 3): recording, individual, start model frame (read-only)."""
        return self._index

    @property
    def recording_names(self) -> list[str | None]:
        """Source of each recording, None for one skipped as too short."""
        return [None if r is None else r.name for r in self._recordings]

    def grid(self, recording: int) -> TimeGrid:
        rec = self._recordings[recording]
        if rec is None:
            raise SkelmaeError(f"recording {recording} was skipped (shorter than one window)")
        return rec.grid

    def __len__(self) -> int:
        return len(self._index)

    # ---- samples ---------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        r, ind, start = (int(v) for v in self._index[i])
        rec = self._recordings[r]
        out = _batch_arrays(rec, r, np.array([ind]), np.array([start]), self.config.n_frames,
                            self.normalisation)
        return {k: v[0] for k, v in out.items()}

    @staticmethod
    def collate(samples: Sequence[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """The batch of windows ``indices``, computed together (one pass per recording)."""
        rows = self._index[np.asarray(indices, dtype=np.int64)]
        parts, order = [], []
        for r in np.unique(rows[:, 0]):
            sel = np.flatnonzero(rows[:, 0] == r)
            parts.append(_batch_arrays(self._recordings[r], int(r), rows[sel, 1], rows[sel, 2],
                                       self.config.n_frames, self.normalisation))
            order.append(sel)
        inverse = np.argsort(np.concatenate(order))
        return {
            k: torch.from_numpy(np.concatenate([p[k] for p in parts])[inverse]) for k in parts[0]
        }

    def _subset(self, keep: np.ndarray) -> WindowDataset:
        """The same recordings (shared, not copied) with part of the index."""
        other = object.__new__(WindowDataset)
        other.__dict__.update(self.__dict__)
        other._index = self._index[keep]
        other._index.setflags(write=False)
        return other


def _batch_arrays(rec: _Recording, r: int, individuals: np.ndarray, starts: np.ndarray, T: int,
                  norm: Normalisation) -> dict[str, np.ndarray]:
    frames = starts[:, None] + np.arange(T)
    out = rec.sample(individuals, frames, norm)
    B = len(starts)
    return {
        "x": out.x,
        "valid": out.valid,
        "recording": np.full(B, r, np.int64),
        "individual": individuals.astype(np.int64),
        "start_frame": np.round(rec.grid.video_frame(starts)).astype(np.int64),
        "model_start": starts.astype(np.int64),
        "center": out.center.astype(np.float32),
        "angle": out.angle.astype(np.float32),
        "scale": np.full(B, rec.scale, np.float32),
    }


def _same_skeleton(recordings: list[PoseTracks]) -> list[PoseTracks]:
    """Same keypoints (reordered to the first recording's order when only the order differs)."""
    first = recordings[0]
    names = tuple(first.keypoint_names)
    out = [first]
    for r, t in enumerate(recordings[1:], start=1):
        if not isinstance(t, PoseTracks):
            raise SkelmaeError(f"recording {r} is a {type(t).__name__}, not PoseTracks")
        if set(t.keypoint_names) != set(names):
            raise SkelmaeError(
                f"keypoints differ between {_recording_name(first, 0)} and "
                f"{_recording_name(t, r)}: only in the first: "
                f"{[k for k in names if k not in t.keypoint_names]}; only in the other: "
                f"{[k for k in t.keypoint_names if k not in names]}"
            )
        if t.n_space != first.n_space:
            raise SkelmaeError(
                f"{_recording_name(t, r)} is {t.n_space}D but {_recording_name(first, 0)} is "
                f"{first.n_space}D"
            )
        out.append(t if tuple(t.keypoint_names) == names else t.sel(keypoints=list(names)))
    return out


# ------------------------------------------------------------------------------- splits
def split_train_val(
    dataset: WindowDataset, val_fraction: float = 0.2, seed: int = 0
) -> tuple[WindowDataset, WindowDataset]:
    """Split by blocks of time, never by window: overlapping windows would leak frames.

    Each recording's grid is cut into up to 10 equal blocks (at least 4 windows long) and
    ``round(val_fraction * blocks)`` of them (at least one) go to validation, the same blocks
    for every individual (they share the scene). A window straddling a train/val border is
    dropped, so no model frame is in both splits. Recordings too short for two blocks stay in
    training.
    """
    if not 0 <= val_fraction < 1:
        raise SkelmaeError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    index, T = dataset.index, dataset.n_frames
    rng = np.random.default_rng(seed)
    is_train = np.zeros(len(index), bool)
    is_val = np.zeros(len(index), bool)
    for r, rec in enumerate(dataset._recordings):
        rows = np.flatnonzero(index[:, 0] == r)
        if rec is None or not len(rows):
            continue
        n = rec.grid.n_frames
        n_blocks = min(10, n // (4 * T))
        if val_fraction == 0 or n_blocks < 2:
            if val_fraction > 0:
                logger.warning("windows: %s is too short for a validation block; all of it "
                               "trains", rec.name)
            is_train[rows] = True
            continue
        n_val = min(n_blocks - 1, max(1, round(val_fraction * n_blocks)))
        edges = np.linspace(0, n, n_blocks + 1).round().astype(np.int64)
        frame_is_val = np.zeros(n, bool)
        for b in rng.choice(n_blocks, n_val, replace=False):
            frame_is_val[edges[b]: edges[b + 1]] = True
        cum = np.concatenate([[0], np.cumsum(frame_is_val)])
        starts = index[rows, 2]
        n_val_frames = cum[starts + T] - cum[starts]
        is_val[rows] = n_val_frames == T
        is_train[rows] = n_val_frames == 0
    if val_fraction > 0 and not is_val.any():
        raise SkelmaeError(
            "too little data for a validation split by time: every recording is shorter than "
            f"8 windows ({8 * T} model frames); use val_fraction=0 or more data"
        )
    return dataset._subset(is_train), dataset._subset(is_val)


# ----------------------------------------------------------------------------- inference
def iter_windows(
    tracks: PoseTracks,
    config: WindowConfig | None = None,
    normalisation: Normalisation | None = None,
    individual: int | str = 0,
    *,
    stride_frames: int | None = None,
    batch_size: int = 256,
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of windows of one individual covering every model frame, for inference.

    Windows start every ``stride_frames`` model frames (default: the config's stride) and the
    last one ends on the last model frame; a recording shorter than one window gives a single
    window padded with invalid frames. No window is skipped for missing data. Frame j of a
    window is model frame ``model_start + j`` of ``TimeGrid.of(tracks, config)``; place the
    recording's rows on that grid with ``grid.model_frame(tracks.frame_index)``.
    """
    config = config or WindowConfig()
    norm = normalisation or resolve_normalisation(tracks, config)
    if tuple(norm.keypoint_names) != tuple(tracks.keypoint_names):
        raise SkelmaeError(
            f"the normalisation is for keypoints {list(norm.keypoint_names)}, "
            f"{_recording_name(tracks, 0)} has {list(tracks.keypoint_names)}"
        )
    if isinstance(individual, str):
        if individual not in tracks.individual_names:
            raise SkelmaeError(f"no individual {individual!r} in {_recording_name(tracks, 0)}; "
                               f"individuals: {list(tracks.individual_names)}")
        individual = tracks.individual_names.index(individual)
    if not 0 <= individual < tracks.n_individuals:
        raise SkelmaeError(f"individual {individual} out of range: {_recording_name(tracks, 0)} "
                           f"has {tracks.n_individuals}")
    if tracks.n_frames == 0:
        raise SkelmaeError(f"{_recording_name(tracks, 0)} has no frames")
    rec = _Recording(tracks, config, norm, _recording_name(tracks, 0))
    T, stride = config.n_frames, stride_frames or config.stride_frames
    last = max(rec.grid.n_frames - T, 0)
    starts = np.arange(0, last + 1, stride)
    if starts[-1] != last:
        starts = np.append(starts, last)
    for a in range(0, len(starts), batch_size):
        chunk = starts[a: a + batch_size]
        out = _batch_arrays(rec, 0, np.full(len(chunk), individual), chunk, T, norm)
        yield {k: torch.from_numpy(v) for k, v in out.items()}
