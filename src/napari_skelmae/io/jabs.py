"""JABS pose files (``*_pose_est_v2..v6.h5``), read with h5py.

JABS (the Kumar lab's mouse behaviour platform) stores ``poseest/points`` as unsigned
integer (y, x) pairs and marks a missing keypoint with confidence 0 and point (0, 0), so
both are undone here: x comes first and such points become NaN. The h5py path is used
instead of ``sleap_io.load_jabs`` because it is vectorised (no per-frame Python objects)
and keeps the file's identity numbers.

Individuals by version: v2 holds one mouse; v3 holds per-frame tracklet ids
(``instance_track_id``, one individual ``track_<id>`` per id, often fragmented); v4+ hold long-term
identities (``instance_embed_id``, 1-based, 0 = unassigned), one individual ``mouse_<id>``
each. Instances without an identity are dropped with a warning.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import SkelmaeWarning, TracksFileError
from ..tracks import PoseTracks
from ._common import check_readable_file, reading

__all__ = ["JABS_EDGES", "JABS_KEYPOINTS", "read"]

#: The 12-point JABS mouse skeleton, in file order.
JABS_KEYPOINTS = (
    "NOSE", "LEFT_EAR", "RIGHT_EAR", "BASE_NECK", "LEFT_FRONT_PAW", "RIGHT_FRONT_PAW",
    "CENTER_SPINE", "LEFT_REAR_PAW", "RIGHT_REAR_PAW", "BASE_TAIL", "MID_TAIL", "TIP_TAIL",
)
#: Spine from the neck to the tail tip, ears from the nose, paws from the spine.
JABS_EDGES = (
    (3, 0), (3, 6), (6, 9), (9, 10), (10, 11),
    (0, 1), (0, 2),
    (6, 4), (6, 5),
    (9, 7), (9, 8),
)
JABS_SYMMETRIES = (
    ("LEFT_EAR", "RIGHT_EAR"), ("LEFT_FRONT_PAW", "RIGHT_FRONT_PAW"),
    ("LEFT_REAR_PAW", "RIGHT_REAR_PAW"),
)
_VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov")


def read(path: str | os.PathLike, fps: float | None = None) -> PoseTracks:
    """Read a JABS pose estimation file (versions 2 to 6)."""
    import h5py

    p = check_readable_file(path)
    with reading(p, "a JABS pose file"):
        with h5py.File(p, "r") as f:
            if "poseest/points" not in f or "poseest/confidence" not in f:
                raise TracksFileError(p, "not a JABS pose file: no poseest/points and "
                                         "poseest/confidence datasets")
            return _read(p, f, fps)


def _read(p: Path, f, fps: float | None) -> PoseTracks:
    group = f["poseest"]
    version = int(np.atleast_1d(group.attrs.get("version", [2]))[0])
    points = np.asarray(group["points"][()])
    conf = np.asarray(group["confidence"][()], dtype=np.float32)
    if version <= 2 or points.ndim == 3:  # single mouse: add the individuals axis
        points, conf = points[:, None], conf[:, None]
        ids = np.ones(points.shape[:2], dtype=np.int64)
    else:
        ids = _identities(p, group, version, points.shape[:2])
    if points.shape[2:] != (len(JABS_KEYPOINTS), 2) or conf.shape != points.shape[:3]:
        raise TracksFileError(
            p, f"poseest/points {points.shape} and confidence {conf.shape} are not "
            f"(frames, instances, {len(JABS_KEYPOINTS)}, 2) and (frames, instances, "
            f"{len(JABS_KEYPOINTS)})"
        )

    xy = points[..., ::-1].astype(np.float32)  # JABS stores (y, x)
    absent = (conf <= 0) | np.all(points == 0, axis=-1)
    xy[absent] = np.nan
    conf = np.where(absent, np.nan, conf)

    unassigned = (ids <= 0) & ~absent.all(axis=-1)
    if unassigned.any():
        warnings.warn(
            f"'{p}': {int(unassigned.sum())} pose instance(s) have no identity and were "
            "left out.",
            SkelmaeWarning,
            stacklevel=4,
        )
    identities = np.unique(ids[ids > 0])
    n_frames = points.shape[0]
    positions = np.full((n_frames, len(identities), len(JABS_KEYPOINTS), 2), np.nan, np.float32)
    confidence = np.full(positions.shape[:3], np.nan, np.float32)
    frame_rows, slots = np.nonzero(ids > 0)
    columns = np.searchsorted(identities, ids[frame_rows, slots])
    if len(np.unique(frame_rows * len(identities) + columns)) != len(frame_rows):
        raise TracksFileError(p, "one identity appears twice in the same frame")
    positions[frame_rows, columns] = xy[frame_rows, slots]
    confidence[frame_rows, columns] = conf[frame_rows, slots]

    metadata = {
        "skeleton": "JABS mouse",
        "symmetries": [list(pair) for pair in JABS_SYMMETRIES],
        "jabs_pose_version": version,
    }
    if "cm_per_pixel" in group.attrs:
        metadata["cm_per_pixel"] = float(np.atleast_1d(group.attrs["cm_per_pixel"])[0])
    stored_fps = group.attrs.get("fps", f.attrs.get("fps"))
    return PoseTracks(
        positions=positions,
        confidence=confidence,
        keypoint_names=JABS_KEYPOINTS,
        individual_names=[f"track_{i - 1}" if version == 3 else f"mouse_{i}" for i in identities],
        edges=JABS_EDGES,
        fps=fps if fps is not None else (float(stored_fps) if stored_fps else None),
        video_path=_video_for(p),
        metadata=metadata,
    )


def _identities(p: Path, group, version: int, shape: tuple[int, int]) -> np.ndarray:
    """Identity number of every (frame, slot); 0 where the slot holds no identified mouse."""
    key = "instance_track_id" if version == 3 else "instance_embed_id"
    if key not in group:
        raise TracksFileError(p, f"JABS v{version} file without poseest/{key}")
    ids = np.asarray(group[key][()], dtype=np.int64)
    if ids.shape != shape:
        raise TracksFileError(p, f"poseest/{key} has shape {ids.shape}, expected {shape}")
    if version == 3:
        # v3 numbers tracklets from 0 and says how many slots of each frame are used.
        count = np.asarray(group["instance_count"][()], dtype=np.int64)
        used = np.arange(shape[1])[None, :] < count[:, None]
        ids = np.where(used, ids + 1, 0)
    return ids


def _video_for(p: Path) -> str:
    """JABS names the video like the pose file without ``_pose_est_vN`` (.avi by default)."""
    stem = re.sub(r"_pose_est_v\d+$", "", p.stem)
    for suffix in _VIDEO_SUFFIXES:
        candidate = p.with_name(stem + suffix)
        if candidate.is_file():
            return str(candidate)
    return str(p.with_name(stem + ".avi"))
