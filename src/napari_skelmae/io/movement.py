"""movement's poses datasets (xarray) and their netCDF files.

movement (https://movement.neuroinformatics.dev) keeps poses in an xarray Dataset with data
variables ``position`` (time, space, keypoint, individual) and ``confidence`` (time,
keypoint, individual). We read and write that layout with xarray alone, so that users of
movement can move data both ways without napari-skelmae depending on movement.
Older movement versions used plural dimension names (keypoints, individuals); both are read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import SkelmaeError, TracksFileError, TracksValidationError
from ..tracks import PoseTracks
from ._common import atomic_output, check_readable_file, reading

__all__ = ["dataset_to_tracks", "read", "tracks_to_dataset", "write"]

_PLURAL_DIMS = {"keypoints": "keypoint", "individuals": "individual"}
_SOFTWARE = {
    "slp": "SLEAP",
    "sleap_analysis": "SLEAP",
    "dlc": "DeepLabCut",
    "simba": "SimBA",
    "jabs": "JABS",
    "nwb": "NWB",
}


def _xarray():
    try:
        import xarray
    except ImportError as e:
        raise SkelmaeError(
            "movement datasets need xarray: pip install napari-skelmae[movement]"
        ) from e
    return xarray


def tracks_to_dataset(tracks: PoseTracks):
    """A movement poses Dataset holding everything needed to rebuild ``tracks`` exactly.

    Beyond movement's own attributes, the video frame of each row is the ``frame_index``
    coordinate along ``time``, and the skeleton is the JSON attribute ``skeleton_edges``
    (keypoint-name pairs, so that it survives selecting keypoints).
    """
    xr = _xarray()
    fps = tracks.fps
    time = tracks.frame_index / fps if fps else tracks.frame_index.copy()
    space = ["x", "y", "z"][: tracks.n_space]
    attrs = {
        "ds_type": "poses",
        "time_unit": "seconds" if fps else "frames",
        "source_software": tracks.metadata.get("source_software")
        or _SOFTWARE.get(tracks.metadata.get("format"), "napari-skelmae"),
        "skeleton_edges": json.dumps([list(pair) for pair in tracks.edge_names]),
        "skelmae_metadata": json.dumps(tracks.metadata, default=str),
    }
    if fps:
        attrs["fps"] = fps
    if tracks.source_path is not None:
        attrs["source_file"] = str(tracks.source_path)
    if tracks.video_path is not None:
        attrs["video_path"] = str(tracks.video_path)
    return xr.Dataset(
        data_vars={
            "position": (
                ("time", "space", "keypoint", "individual"),
                tracks.positions.transpose(0, 3, 2, 1),
            ),
            "confidence": (
                ("time", "keypoint", "individual"),
                tracks.confidence.transpose(0, 2, 1),
            ),
        },
        coords={
            "time": time,
            "frame_index": ("time", tracks.frame_index),
            "space": space,
            "keypoint": list(tracks.keypoint_names),
            "individual": list(tracks.individual_names),
        },
        attrs=attrs,
    )


def dataset_to_tracks(ds, fps: float | None = None) -> PoseTracks:
    """PoseTracks from a movement poses Dataset (singular or plural dims, time in s or frames).

    ``fps`` overrides the dataset's ``fps`` attribute. Without a ``frame_index`` coordinate,
    frames are ``time * fps`` rounded (time in seconds) or ``time`` itself (in frames).
    """
    ds = ds.rename({old: new for old, new in _PLURAL_DIMS.items() if old in ds.dims})
    if "position" not in ds.data_vars:
        raise TracksValidationError(
            f"not a movement poses dataset: no 'position' variable (variables: "
            f"{sorted(map(str, ds.data_vars))})"
        )
    position = ds["position"]
    if "individual" not in position.dims:
        position = position.expand_dims(individual=["individual_0"])
    missing = {"time", "space", "keypoint"} - set(position.dims)
    if missing:
        raise TracksValidationError(
            f"'position' must have dims (time, space, keypoint, individual); "
            f"it has {position.dims}, missing {sorted(missing)}"
        )
    if "space" in position.coords:
        order = [s for s in ("x", "y", "z") if s in position.coords["space"].values.tolist()]
        if len(order) == position.sizes["space"]:
            position = position.sel(space=order)
    positions = position.transpose("time", "individual", "keypoint", "space").values
    confidence = None
    if "confidence" in ds.data_vars:
        conf = ds["confidence"]
        if "individual" not in conf.dims:
            conf = conf.expand_dims(individual=position.coords["individual"].values)
        confidence = conf.transpose("time", "individual", "keypoint").values

    attrs = dict(ds.attrs)
    file_fps = _positive(attrs.get("fps"))
    fps = _positive(fps) or file_fps
    frame_index, fps = _frame_index(ds, attrs, fps)
    keypoints = _names(position, "keypoint")
    edges = _edges(attrs.get("skeleton_edges"), keypoints)
    metadata = _metadata(attrs)
    return PoseTracks(
        positions=positions,
        confidence=confidence,
        keypoint_names=keypoints,
        individual_names=_names(position, "individual"),
        edges=edges,
        frame_index=frame_index,
        fps=fps,
        source_path=attrs.get("source_file") or None,
        video_path=attrs.get("video_path") or None,
        metadata=metadata,
    )


def read(path: str | os.PathLike, fps: float | None = None) -> PoseTracks:
    """Read a movement poses netCDF file (``.nc``)."""
    p = check_readable_file(path)
    xr = _xarray()
    with reading(p, "a movement netCDF file"):
        with xr.open_dataset(p, engine="h5netcdf") as ds:
            ds = ds.load()
    try:
        tracks = dataset_to_tracks(ds, fps=fps)
    except SkelmaeError as e:
        raise TracksFileError(p, str(e)) from e
    metadata = dict(tracks.metadata)
    if ds.attrs.get("source_file"):  # the file these tracks were first read from
        metadata["source_file"] = str(ds.attrs["source_file"])
    return tracks.replace(source_path=p, metadata=metadata)


def write(tracks: PoseTracks, path: str | os.PathLike) -> Path:
    """Write ``tracks`` as a movement netCDF file, atomically (temp file, then rename)."""
    p = Path(path)
    ds = tracks_to_dataset(tracks)
    with atomic_output(p, "movement netCDF file") as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return p


# ---------------------------------------------------------------------- helpers
def _positive(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def _names(da, dim: str) -> list[str] | None:
    if dim not in da.coords:
        return None
    return [str(v) for v in da.coords[dim].values.tolist()]


def _frame_index(ds, attrs: dict, fps: float | None) -> tuple[np.ndarray, float | None]:
    """Video frame of each row, and the fps (inferred from seconds when nowhere else)."""
    if "frame_index" in ds.coords:
        return np.asarray(ds.coords["frame_index"].values), fps
    if "time" not in ds.coords:
        return np.arange(ds.sizes["time"]), fps
    time = np.asarray(ds.coords["time"].values, dtype=float)
    unit = str(attrs.get("time_unit", "")).lower()
    if unit not in ("seconds", "frames"):  # unlabelled: whole numbers are frame numbers
        unit = "frames" if np.all(time == np.round(time)) else "seconds"
    if unit == "frames":
        return np.round(time).astype(np.int64), fps
    if fps is None:
        steps = np.diff(np.unique(time))
        if not steps.size:
            raise TracksValidationError("time is in seconds but the fps is unknown; pass fps")
        fps = 1.0 / float(np.median(steps))
    frames = np.round(time * fps).astype(np.int64)
    if len(np.unique(frames)) != len(frames):
        raise TracksValidationError(
            f"at {fps:g} fps, several time points fall on the same video frame; "
            "is the fps right?"
        )
    return frames, fps


def _edges(raw, keypoints: list[str] | None) -> list[tuple[int, int]]:
    if not raw or keypoints is None:
        return []
    try:
        pairs = json.loads(raw)
    except (TypeError, ValueError):
        return []
    index = {name: i for i, name in enumerate(keypoints)}
    return [
        (index[a], index[b]) for a, b in pairs if a in index and b in index
    ]


def _metadata(attrs: dict) -> dict:
    """Our saved metadata if present, else movement's descriptive attributes."""
    try:
        saved = json.loads(attrs.get("skelmae_metadata", ""))
    except (TypeError, ValueError):
        saved = None
    if isinstance(saved, dict):
        return saved
    keep = ("source_software", "source_file", "ds_type", "time_unit")
    return {k: str(attrs[k]) for k in keep if k in attrs}
