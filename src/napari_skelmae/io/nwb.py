"""NWB files with ndx-pose ``PoseEstimation`` containers, read with h5py alone.

pynwb validates the whole file against its namespace before anything can be read, and
fails on files written with older ndx-pose versions (e.g. DLC2NWB's ndx-pose 0.1 layout,
where nodes and edges live in the PoseEstimation group, and series are named
``<individual>_<bodypart>``). Reading the HDF5 layout directly handles both that layout
and the newer one (a linked ``Skeleton`` group holding nodes and edges).

Each ``PoseEstimation`` group is one individual; each ``PoseEstimationSeries`` in it one
keypoint. Series may have different lengths and their own timestamps (sleap-io writes
only the frames where a keypoint was found), so rows are the union of their frames.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from ..errors import SkelmaeWarning, TracksFileError
from ..tracks import PoseTracks
from ._common import check_readable_file, reading

__all__ = ["read"]

_DLC2NWB_DESCRIPTION = re.compile(
    r"^Keypoint (?P<keypoint>.+) from individual (?P<individual>.+)\.$"
)


def read(path: str | os.PathLike, fps: float | None = None) -> PoseTracks:
    """Read the pose estimates of an NWB file.

    Times are converted to video frames with the file's own sampling (the series' ``rate``,
    else the median step of its timestamps); ``fps`` only overrides the reported frame rate.
    Timestamps that are whole numbers one apart are frame numbers written as seconds (both
    DLC2NWB and sleap-io do that when they do not know the video's rate): the fps is then
    reported unknown rather than 1.
    """
    import h5py

    p = check_readable_file(path)
    with reading(p, "an NWB file"), h5py.File(p, "r") as f:
        groups = _pose_estimation_groups(f, p)
        individuals = [_read_individual(g, p) for g in groups]
        subject = _text(f, "general/subject/subject_id")
    if len(individuals) == 1 and individuals[0]["name"] == "PoseEstimation":
        individuals[0]["name"] = subject or "individual_0"
    return _assemble(individuals, p, fps)


def _pose_estimation_groups(f, path) -> list:
    """PoseEstimation groups under /processing/<module>/, from one module only."""
    by_module: dict[str, list] = {}
    processing = f.get("processing")
    for module_name in processing or ():
        module = processing.get(module_name)
        if not hasattr(module, "items"):
            continue
        for name in module:
            group = _child(module, name)
            if group is not None and _neurodata_type(group) == "PoseEstimation":
                by_module.setdefault(module_name, []).append(group)
    if not by_module:
        raise TracksFileError(path, "no ndx-pose PoseEstimation data in this NWB file")
    module_name, *others = sorted(by_module)
    if others:
        warnings.warn(
            f"NWB file '{path}' holds pose estimates in several processing modules "
            f"{[module_name, *others]} (one per video?); reading only '{module_name}'.",
            SkelmaeWarning,
            stacklevel=4,
        )
    return by_module[module_name]


def _read_individual(group, path) -> dict:
    """Series (keypoint name, times, data, confidence), skeleton and facts of one container."""
    series = {}
    skeleton = None
    for name in group:
        child = _child(group, name)
        kind = _neurodata_type(child) if child is not None else None
        if kind == "PoseEstimationSeries":
            series[name] = child
        elif kind == "Skeleton" and skeleton is None:
            skeleton = child
    if not series:
        raise TracksFileError(path, f"PoseEstimation '{group.name}' holds no PoseEstimationSeries")

    # Old layout: nodes/edges in the container; new layout: in the linked Skeleton.
    node_source = skeleton if skeleton is not None else group
    nodes = _text_list(node_source, "nodes")
    edges = node_source.get("edges")
    edges = np.asarray(edges[()], dtype=np.int64).reshape(-1, 2) if edges is not None else None
    order = [n for n in nodes if n in series] + sorted(n for n in series if n not in nodes)

    # DLC2NWB names series "<individual>_<bodypart>" and says so in each description.
    parsed = [_DLC2NWB_DESCRIPTION.match(_attr_text(series[n], "description")) for n in order]
    individual = group.name.rsplit("/", 1)[-1]
    keypoint_of = {n: n for n in order}
    if all(parsed) and len({m["individual"] for m in parsed}) == 1:
        individual = parsed[0]["individual"]
        keypoint_of = {n: m["keypoint"] for n, m in zip(order, parsed, strict=True)}
    elif individual.startswith("track="):  # sleap-io names containers after tracks
        individual = individual[len("track="):]

    edge_names = []
    if edges is not None and len(nodes):
        if edges.size and edges.max() >= len(nodes):
            raise TracksFileError(path, f"skeleton edges of '{group.name}' index missing nodes")
        node_keypoint = [keypoint_of.get(n, n) for n in nodes]
        edge_names = [(node_keypoint[a], node_keypoint[b]) for a, b in edges.tolist()]

    videos = _text_list(group, "original_videos")
    return {
        "name": individual,
        "series": [(keypoint_of[n], *_read_series(series[n], path)) for n in order],
        "edges": edge_names,
        "video": videos[0] if videos else None,
        "source_software": _text(group, "source_software"),
        "scorer": _text(group, "scorer"),
    }


def _read_series(series, path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """(times, data (T, space), confidence (T,), sampling rate if stated) of one series."""
    data = series.get("data")
    if data is None or data.ndim != 2 or data.shape[1] not in (2, 3):
        shape = None if data is None else data.shape
        raise TracksFileError(path, f"'{series.name}/data' must be (frames, 2 or 3), got {shape}")
    values = np.asarray(data[()], dtype=np.float64)
    conversion = float(data.attrs.get("conversion", 1.0))
    offset = float(data.attrs.get("offset", 0.0))
    if conversion != 1.0 or offset != 0.0:
        values = values * conversion + offset
    n = len(values)
    confidence = np.full(n, np.nan)
    if "confidence" in series:
        confidence = np.asarray(series["confidence"][()], dtype=np.float64).reshape(-1)
        if len(confidence) != n:
            raise TracksFileError(path, f"'{series.name}' has {len(confidence)} confidences "
                                  f"for {n} positions")
    rate = None
    if "timestamps" in series:
        times = np.asarray(series["timestamps"][()], dtype=np.float64).reshape(-1)
        if len(times) != n:
            raise TracksFileError(path, f"'{series.name}' has {len(times)} timestamps "
                                  f"for {n} positions")
    elif "starting_time" in series:
        start = series["starting_time"]
        rate = float(start.attrs["rate"])
        times = float(start[()]) + np.arange(n) / rate
    else:
        raise TracksFileError(path, f"'{series.name}' has neither timestamps nor starting_time")
    return times, values, confidence, rate


def _assemble(individuals: list[dict], path, fps: float | None) -> PoseTracks:
    all_series = [s for ind in individuals for s in ind["series"]]
    spaces = {values.shape[1] for _, _, values, _, _ in all_series}
    if len(spaces) > 1:
        raise TracksFileError(path, "some keypoints are 2-D and others 3-D")
    rates = [rate for *_, rate in all_series if rate]
    if rates:
        file_rate = rates[0]
    else:
        steps = np.diff(np.unique(np.concatenate([t for _, t, *_ in all_series])))
        steps = steps[steps > 0]
        file_rate = 1.0 / float(np.median(steps)) if steps.size else 1.0
    times_are_frames = file_rate == 1.0 and all(
        np.array_equal(t, np.round(t)) for _, t, *_ in all_series
    )

    frames_of = []
    for keypoint, times, *_ in all_series:
        frames = np.round(times * file_rate).astype(np.int64)
        if len(np.unique(frames)) != len(frames):
            raise TracksFileError(
                path, f"timestamps of keypoint '{keypoint}' map several samples to one video "
                f"frame at {file_rate:g} frames per second"
            )
        frames_of.append(frames)
    frame_index = np.unique(np.concatenate(frames_of))
    if frame_index.size and frame_index[0] < 0:
        raise TracksFileError(path, "timestamps before the start of the video (negative)")

    keypoints = list(dict.fromkeys(kp for kp, *_ in all_series))
    names = _unique_names([ind["name"] for ind in individuals])
    n_space = spaces.pop()
    positions = np.full((len(frame_index), len(names), len(keypoints), n_space), np.nan)
    confidence = np.full(positions.shape[:3], np.nan)
    k = 0
    for i, ind in enumerate(individuals):
        for keypoint, _, values, conf, _ in ind["series"]:
            rows = np.searchsorted(frame_index, frames_of[k])
            kp = keypoints.index(keypoint)
            positions[rows, i, kp] = values
            confidence[rows, i, kp] = conf
            k += 1

    index = {kp: j for j, kp in enumerate(keypoints)}
    edges = list(dict.fromkeys(
        (index[a], index[b]) for ind in individuals for a, b in ind["edges"]
        if a in index and b in index
    ))
    first = individuals[0]
    metadata = {
        "source_software": first["source_software"],
        "scorer": first["scorer"],
        "timestamps_are_frames": times_are_frames,
    }
    return PoseTracks(
        positions=positions,
        confidence=confidence,
        keypoint_names=keypoints,
        individual_names=names,
        edges=edges,
        frame_index=frame_index,
        fps=fps if fps is not None else (None if times_are_frames else file_rate),
        video_path=first["video"],
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


# ---------------------------------------------------------------------- h5py helpers
def _child(group, name):
    """A member of ``group``, following links; None for dangling links."""
    try:
        return group[name]
    except (KeyError, OSError):
        return None


def _neurodata_type(obj) -> str | None:
    value = obj.attrs.get("neurodata_type")
    return value.decode() if isinstance(value, bytes) else value


def _as_text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _attr_text(obj, name: str) -> str:
    value = obj.attrs.get(name)
    return "" if value is None else _as_text(value)


def _text(group, name: str) -> str | None:
    obj = group.get(name) if group is not None else None
    if obj is None or not hasattr(obj, "shape"):
        return None
    value = obj[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else None
    return None if value is None else _as_text(value)


def _text_list(group, name: str) -> list[str]:
    obj = group.get(name)
    if obj is None or not hasattr(obj, "shape"):
        return []
    return [_as_text(v) for v in np.asarray(obj[()]).reshape(-1)]


def _unique_names(names: list[str]) -> list[str]:
    """Names made unique by numbering repeats (two containers may share a subject name)."""
    out: list[str] = []
    for name in names:
        unique, count = name, 0
        while unique in out:
            count += 1
            unique = f"{name}_{count}"
        out.append(unique)
    return out
