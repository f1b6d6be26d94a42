"""SLEAP readers: labels/predictions (``.slp``) and analysis HDF5 (``.analysis.h5``).

``.slp`` files are parsed by sleap-io, but the arrays are built here from the labelled
frames and instances rather than with ``Labels.numpy()``: that method can merge distinct
tracks when no frame holds two instances (sleap-io 0.9.5), drops user instances' missing
scores and does not say how user and predicted instances were reconciled. The rules here:

* individuals are the file's tracks, in file order, named by ``track.name``;
* a user instance wins over a predicted instance of the same track in the same frame and
  over the predicted instance it was made from (``from_predicted``), whose track it inherits
  when it has none of its own;
* a file without any tracks gets individuals ``instance_0..`` from the order of the instances
  in each frame; a file with tracks that also holds untracked instances gets extra
  individuals ``untracked_0..`` for them (again by order within each frame);
* labelled frames repeated for the same video frame are merged (user instances still win);
* confidence is the predicted point score, NaN for user points (a human gave no score).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import sleap_io as sio

from ..errors import SkelmaeWarning, TracksFileError
from ..tracks import PoseTracks
from ._common import check_readable_file, reading

__all__ = ["read_analysis_h5", "read_slp"]

SLP_REQUIRED = ("metadata", "videos_json", "tracks_json", "frames", "instances", "points",
                "pred_points")


# ---------------------------------------------------------------------------------- .slp
def read_slp(
    path: str | os.PathLike, fps: float | None = None, *, video_index: int | None = None
) -> PoseTracks:
    """Read a SLEAP ``.slp`` file (user labels and/or predictions) of one video.

    Parameters
    ----------
    path
        The ``.slp`` file.
    fps
        Frame rate; overrides the one stored in the file (most files store none).
    video_index
        Which of the file's videos to read. By default the first video that has labelled
        frames; a warning names the other videos with labels when there are several.
    """
    p = check_readable_file(path)
    _check_slp_structure(p)
    with reading(p, "a SLEAP .slp file"):
        labels = sio.load_slp(os.fspath(p), open_videos=False)
    with reading(p, "a SLEAP .slp file"):
        return _labels_to_tracks(p, labels, fps, video_index)


def _check_slp_structure(p: Path) -> None:
    """Name the missing datasets ourselves instead of letting sleap-io raise a KeyError."""
    import h5py

    with reading(p, "a SLEAP .slp file"):
        with h5py.File(p, "r") as f:
            missing = [k for k in SLP_REQUIRED if k not in f]
    if missing:
        raise TracksFileError(p, f"not a complete SLEAP .slp file: missing {missing}")


def _choose_video(p: Path, labels, video_index: int | None):
    counts = [0] * len(labels.videos)
    video_pos = {id(v): i for i, v in enumerate(labels.videos)}
    for lf in labels.labeled_frames:
        counts[video_pos[id(lf.video)]] += 1
    if video_index is not None:
        if not -len(labels.videos) <= video_index < len(labels.videos):
            raise TracksFileError(
                p, f"video_index {video_index} is out of range: the file has "
                f"{len(labels.videos)} video(s)"
            )
        return video_index % len(labels.videos)
    used = [i for i, c in enumerate(counts) if c]
    if not used:
        raise TracksFileError(p, "the file holds no labelled frames")
    if len(used) > 1:
        others = ", ".join(f"{i}: '{_video_name(labels.videos[i])}'" for i in used[1:])
        warnings.warn(
            f"'{p}' holds labelled frames of {len(used)} videos; reading video {used[0]} "
            f"('{_video_name(labels.videos[used[0]])}') only. Others: {others}. "
            "Choose one with read_slp(path, video_index=...).",
            SkelmaeWarning,
            stacklevel=4,
        )
    return used[0]


def _video_name(video) -> str:
    name = video.filename
    return f"{len(name)} images from '{name[0]}'" if isinstance(name, list) else str(name)


def _video_path(p: Path, video) -> str | None:
    """The video file named in the .slp; for embedded frames (.pkg.slp) the source video."""
    name = video.filename
    if isinstance(name, list):  # an image sequence: no single video file
        return None
    if Path(name).name == p.name or name == ".":
        source = getattr(video, "source_video", None)
        return None if source is None or isinstance(source.filename, list) else source.filename
    return str(name)


def _labels_to_tracks(p: Path, labels, fps: float | None, video_index: int | None) -> PoseTracks:
    vi = _choose_video(p, labels, video_index)
    video = labels.videos[vi]

    # Pool instances per video frame: repeated labelled frames are merged here.
    by_frame: dict[int, list] = {}
    for lf in labels.labeled_frames:
        if lf.video is video:
            by_frame.setdefault(int(lf.frame_idx), []).extend(lf.instances)
    if not by_frame:
        raise TracksFileError(p, f"video {vi} ('{_video_name(video)}') has no labelled frames")

    track_slot = {id(t): i for i, t in enumerate(labels.tracks)}
    track_names = [t.name or f"track_{i}" for i, t in enumerate(labels.tracks)]
    frame_ids = sorted(by_frame)
    placed: list[tuple[int, object, object]] = []  # (row, track-or-None, instance)
    untracked_rank: list[int] = []
    n_conflicts = 0
    for row, frame in enumerate(frame_ids):
        chosen, untracked, conflicts = _resolve_frame(by_frame[frame])
        n_conflicts += conflicts
        for track, inst in chosen:
            if id(track) not in track_slot:  # a track missing from the file's list
                track_slot[id(track)] = len(track_names)
                track_names.append(track.name or f"track_{len(track_names)}")
            placed.append((row, track, inst))
        for rank, inst in enumerate(untracked):
            placed.append((row, None, inst))
            untracked_rank.append(rank)
    if n_conflicts:
        warnings.warn(
            f"'{p}': {n_conflicts} instance(s) share a track and frame with another instance "
            "of the same kind; the first one was kept.",
            SkelmaeWarning,
            stacklevel=4,
        )

    n_untracked = max(untracked_rank, default=-1) + 1
    prefix = "untracked_" if labels.tracks else "instance_"
    names = _unique(track_names + [f"{prefix}{i}" for i in range(n_untracked)])

    skeleton = _single_skeleton(p, labels, [inst for _, _, inst in placed])
    n_kp = len(skeleton.nodes)
    positions = np.full((len(frame_ids), len(names), n_kp, 2), np.nan, dtype=np.float32)
    confidence = np.full((len(frame_ids), len(names), n_kp), np.nan, dtype=np.float32)
    if placed:
        rows = np.fromiter((r for r, _, _ in placed), dtype=np.int64, count=len(placed))
        ranks = iter(untracked_rank)
        slots = np.array(
            [track_slot[id(t)] if t is not None else len(track_names) + next(ranks)
             for _, t, _ in placed],
            dtype=np.int64,
        )
        points = [inst.points for _, _, inst in placed]
        xy = np.stack([pt["xy"] for pt in points]).astype(np.float32)
        visible = np.stack([pt["visible"] for pt in points])
        xy[~visible] = np.nan
        scores = np.stack(
            [pt["score"] if "score" in pt.dtype.names else np.full(n_kp, np.nan)
             for pt in points]  # user points carry no score
        ).astype(np.float32)
        positions[rows, slots] = xy
        confidence[rows, slots] = scores

    backend = video.backend_metadata or {}
    stored_fps = backend.get("fps")
    n_user = sum(not isinstance(inst, sio.PredictedInstance) for _, _, inst in placed)
    return PoseTracks(
        positions=positions,
        confidence=confidence,
        keypoint_names=skeleton.node_names,
        individual_names=names,
        edges=[tuple(e) for e in skeleton.edge_inds],
        frame_index=np.asarray(frame_ids, dtype=np.int64),
        fps=fps if fps is not None else (stored_fps or None),
        video_path=_video_path(p, video),
        metadata={
            "skeleton": skeleton.name,
            "symmetries": [list(pair) for pair in skeleton.symmetry_names],
            "video_index": vi,
            "n_user_instances": int(n_user),
            "n_predicted_instances": len(placed) - int(n_user),
        },
    )


def _resolve_frame(instances: list) -> tuple[list, list, int]:
    """Apply the user-over-predicted rules to one frame's instances.

    Returns ``[(track, instance)]`` for tracked instances, the untracked instances in frame
    order, and how many instances were dropped because another instance of the same kind
    held the same track.
    """
    present = {id(i) for i in instances}
    # A user instance made from a prediction in this frame takes that prediction's place
    # in the frame order, and its track when the user instance has none of its own.
    replacement = {
        id(u.from_predicted): u
        for u in instances
        if not isinstance(u, sio.PredictedInstance)
        and u.from_predicted is not None
        and id(u.from_predicted) in present
    }
    moved = {id(u) for u in replacement.values()}
    ordered = []
    for inst in instances:
        if id(inst) in moved:
            continue
        user = replacement.get(id(inst))
        if user is None:
            ordered.append((inst, inst.track))
        else:
            ordered.append((user, user.track if user.track is not None else inst.track))

    user_tracks = {
        id(t)
        for inst, t in ordered
        if t is not None and not isinstance(inst, sio.PredictedInstance)
    }
    chosen: dict[int, tuple] = {}
    untracked = []
    conflicts = 0
    for inst, track in ordered:
        if track is None:
            untracked.append(inst)
        elif isinstance(inst, sio.PredictedInstance) and id(track) in user_tracks:
            continue  # the user's instance of this track wins
        elif id(track) in chosen:
            conflicts += 1
        else:
            chosen[id(track)] = (track, inst)
    return list(chosen.values()), untracked, conflicts


def _single_skeleton(p: Path, labels, instances: list):
    """The one skeleton of the instances read (PoseTracks has one keypoint axis)."""
    used = list({id(i.skeleton): i.skeleton for i in instances}.values())
    if len(used) > 1:
        names = ", ".join(f"'{s.name}' ({len(s.nodes)} nodes)" for s in used)
        raise TracksFileError(
            p, f"the instances of this video use {len(used)} different skeletons ({names}); "
            "only one skeleton per recording is supported"
        )
    if used:
        return used[0]
    if labels.skeletons:
        return labels.skeletons[0]
    raise TracksFileError(p, "the file defines no skeleton")


def _unique(names: list[str]) -> list[str]:
    """SLEAP allows two tracks with one name; PoseTracks needs distinct names."""
    out: list[str] = []
    for name in names:
        candidate, k = name, 2
        while candidate in out or (candidate != name and candidate in names):
            candidate, k = f"{name}_{k}", k + 1
        out.append(candidate)
    return out


# ------------------------------------------------------------------------- analysis HDF5
#: Axis order of ``tracks`` in analysis files. SLEAP >= 1.3 and sleap-io write frames
#: first and say so in a ``dims`` attribute; older SLEAP wrote the transpose (for MATLAB).
NEW_LAYOUT = ("frame", "track", "node", "xy")
OLD_LAYOUT = ("track", "xy", "node", "frame")
_DIM_ALIASES = {"frames": "frame", "tracks": "track", "nodes": "node", "coords": "xy",
                "space": "xy", "instance": "track", "instances": "track"}


def read_analysis_h5(path: str | os.PathLike, fps: float | None = None) -> PoseTracks:
    """Read a SLEAP analysis HDF5 file (``sleap-convert --format analysis``).

    Both axis orders are understood: frames-first with a ``dims`` attribute (current) and
    the old transposed (tracks, xy, nodes, frames). Without ``dims`` the order is inferred
    from ``node_names``/``track_names``; a shape that fits both orders is refused.
    """
    import h5py

    p = check_readable_file(path)
    with reading(p, "a SLEAP analysis HDF5 file"):
        with h5py.File(p, "r") as f:
            return _read_analysis(p, f, fps)


def _read_analysis(p: Path, f, fps: float | None) -> PoseTracks:
    missing = [k for k in ("tracks", "node_names") if k not in f]
    if missing:
        raise TracksFileError(p, f"not a SLEAP analysis file: missing datasets {missing}")
    node_names = _strings(f["node_names"][()])
    track_names = _strings(f["track_names"][()]) if "track_names" in f else []
    ds = f["tracks"]
    layout = _tracks_layout(p, ds, len(node_names), len(track_names))
    positions = np.transpose(ds[()], [layout.index(d) for d in NEW_LAYOUT])
    n_frames, n_tracks = positions.shape[:2]

    confidence = None
    if "point_scores" in f:
        score_layout = _dims(f["point_scores"]) or tuple(d for d in layout if d != "xy")
        scores = f["point_scores"][()]
        order = [score_layout.index(d) for d in ("frame", "track", "node")]
        if scores.ndim != 3 or np.transpose(scores, order).shape != positions.shape[:3]:
            raise TracksFileError(
                p, f"'point_scores' has shape {scores.shape}, which does not match "
                f"'tracks' {ds.shape}"
            )
        confidence = np.transpose(scores, order)

    frame_index = None
    for key in ("frame_index", "frame_inds", "frame_idx"):
        if key in f:
            frame_index = np.asarray(f[key][()]).reshape(-1)
            break

    attrs = dict(f.attrs)
    backend = _json(attrs.get("video_backend_metadata")) or {}
    stored_fps = attrs.get("fps", backend.get("fps"))
    video_path = _strings(f["video_path"][()])[0] if "video_path" in f else ""
    metadata = {"analysis_layout": "frames-first" if layout == NEW_LAYOUT else "tracks-first"}
    if "skeleton_name" in attrs:
        metadata["skeleton"] = _strings(attrs["skeleton_name"])[0]
    symmetries = _json(attrs.get("skeleton_symmetries"))
    if symmetries:
        metadata["symmetries"] = [[str(a), str(b)] for a, b in symmetries]

    if not track_names:
        track_names = [f"instance_{i}" for i in range(n_tracks)]
    return PoseTracks(
        positions=positions,
        confidence=confidence,
        keypoint_names=node_names,
        individual_names=_unique(track_names),
        edges=_analysis_edges(p, f, node_names, layout),
        frame_index=frame_index,
        fps=fps if fps is not None else (float(stored_fps) if stored_fps else None),
        video_path=video_path or None,
        metadata=metadata,
    )


def _tracks_layout(p: Path, ds, n_nodes: int, n_tracks: int) -> tuple[str, ...]:
    """The axis names of ``tracks``, from its ``dims`` attribute or by matching sizes."""
    if ds.ndim != 4:
        raise TracksFileError(p, f"'tracks' must be 4-D, but has shape {ds.shape}")
    named = _dims(ds)
    candidates = [named] if named else [NEW_LAYOUT, OLD_LAYOUT]
    fitting = [
        layout for layout in candidates
        if sorted(layout) == sorted(NEW_LAYOUT)
        and ds.shape[layout.index("node")] == n_nodes
        and ds.shape[layout.index("xy")] == 2
        and (n_tracks == 0 or ds.shape[layout.index("track")] == n_tracks)
    ]
    expected = f"{n_nodes} node_names and {n_tracks or 'any number of'} track_names"
    if not fitting:
        told = f"its dims attribute says {list(named)}" if named else (
            "it fits neither (frames, tracks, nodes, xy) nor the old (tracks, xy, nodes, frames)"
        )
        raise TracksFileError(
            p, f"'tracks' has shape {ds.shape}, which does not match {expected}; {told}"
        )
    if len(fitting) > 1:
        raise TracksFileError(
            p, f"'tracks' has shape {ds.shape}, which fits both (frames, tracks, nodes, xy) and "
            f"the old (tracks, xy, nodes, frames) for {expected}, and there is no 'dims' "
            "attribute to tell which"
        )
    return fitting[0]


def _dims(ds) -> tuple[str, ...] | None:
    raw = _json(ds.attrs.get("dims"))
    if raw is None:
        return None
    return tuple(_DIM_ALIASES.get(d, d) for d in _strings(raw))


def _analysis_edges(p: Path, f, node_names: list[str], layout) -> list[tuple[int, int]]:
    if "edge_inds" in f:
        edges = np.asarray(f["edge_inds"][()], dtype=np.int64)
    elif "edge_names" in f:
        names = np.asarray(f["edge_names"][()])
        lookup = {n: i for i, n in enumerate(node_names)}
        flat = _strings(names.reshape(-1))
        unknown = sorted(set(flat) - set(lookup))
        if unknown:
            raise TracksFileError(p, f"'edge_names' names unknown nodes {unknown}")
        edges = np.array([lookup[n] for n in flat], dtype=np.int64).reshape(names.shape)
    else:
        return []
    # Files in the old transposed layout store the edge table transposed too.
    if edges.ndim == 2 and edges.shape[0] == 2 and (edges.shape[1] != 2 or layout == OLD_LAYOUT):
        edges = edges.T
    if edges.size and (edges.ndim != 2 or edges.shape[1] != 2):
        raise TracksFileError(p, f"the skeleton edge table has shape {edges.shape}, not (edges, 2)")
    return [tuple(e) for e in edges.reshape(-1, 2).tolist()]


def _strings(values) -> list[str]:
    arr = np.atleast_1d(np.asarray(values, dtype=object))
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr]


def _json(value):
    """Parse a JSON attribute (str or bytes); None when absent or not JSON."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return value.tolist() if isinstance(value, np.ndarray) else value
    try:
        return json.loads(value)
    except ValueError:
        return None
