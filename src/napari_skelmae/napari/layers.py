"""Pure conversions between :class:`PoseTracks` and napari layer data.

Everything here returns plain LayerDataTuples ``(data, kwargs, layer_type)`` so that it
runs and is tested without a viewer or Qt; napari turns them into layers with
``Layer.create(*t)`` (or ``viewer.add_layer``).

Layout: every layer's first axis is the *video frame* (``tracks.frame_index`` of the row),
followed by napari's (row, col) = (y, x) order, or (z, y, x) for 3D tracks. So points,
skeleton and trails line up with the video even for sparse, unordered labelled frames.

Choices, measured with napari 0.9.2 on 2 cores (``benchmarks/bench_skeleton_layer.py``,
the two-fly ``sleap_analysis_example`` tiled to 1 hour at 30 fps: 108000 frames,
2.75 M points, 2.54 M skeleton segments):

* Skeleton: a Vectors layer (start point, and the projection with 0 along the frame
  axis). 1 hour: 1.1 s to build the layer, 154 MB, 40 ms per frame step. The same
  segments as a Shapes layer of lines: 373 s, 7.3 GB and 7.6 s per frame step (Shapes keep
  a Python object per line), so Shapes were dropped; the full table is in the benchmark.
* Big arrays are column-major: napari recomputes a layer's extent (min/max down each
  column) on every frame step, which is ~70x faster on contiguous columns (1-hour frame
  step: points 15 ms instead of 280 ms, skeleton 40 ms instead of 580 ms).
* Point colours: ``face_color=<feature>`` with a {category: colour} cycle rather than an
  explicit colour per point. It costs 1.4 s instead of 0.1 s for 2.75 M points, but napari
  re-derives the colours whenever the features change, so a corrected identity recolours
  its points (explicit colours would stay stale).
* Low confidence (score < ``min_confidence``): a thick red border (``border_width`` per
  point; the other points have none); a per-point symbol built ~40 % slower.
* The mapping from points back to the tracks' rows is not stored as arrays: each point
  carries its ``individual`` and ``keypoint`` as features and its video frame as its first
  coordinate, which napari keeps in step when points are moved, deleted or added. The
  layer's ``metadata['skelmae']`` holds only the small facts (names, skeleton,
  ``frame_index``, fps, paths, the tracks' metadata) needed to rebuild the PoseTracks.
"""

from __future__ import annotations

import colorsys
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SkelmaeError, SkelmaeWarning
from ..tracks import PoseTracks

__all__ = [
    "color_cycle",
    "label_layers",
    "layers_to_tracks",
    "point_size",
    "skeleton_segments",
    "tracks_to_layers",
]

#: the key of every layer's metadata that this plugin owns
METADATA_KEY = "skelmae"
#: confidence below which points are marked, when the tracks have scores
DEFAULT_MIN_CONFIDENCE = 0.5
#: seconds of past positions a trail shows
TRAIL_SECONDS = 3.0
#: trail length in frames when the tracks have no fps
TRAIL_FRAMES_WITHOUT_FPS = 90
#: red ring width, relative to the point size, for low-confidence points
LOW_CONFIDENCE_BORDER = 0.3

_GOLDEN = 0.618033988749895
_COLOR_BY = ("auto", "individual", "keypoint")

LayerDataTuple = tuple[Any, dict[str, Any], str]


# ---------------------------------------------------------------------------- helpers
def color_cycle(n: int) -> np.ndarray:
    """``n`` distinct categorical colours, float32 RGBA (n, 4).

    Hues step by the golden ratio so that neighbours (individual 0 and 1, keypoint 3 and 4)
    differ most; saturation and brightness change every 5 and 10 colours so that long
    cycles (many fragmented tracks) stay distinguishable. The first hues avoid pure red,
    which marks low-confidence points.
    """
    i = np.arange(max(int(n), 0))
    hue = (0.55 + i * _GOLDEN) % 1.0
    sat = np.where((i // 5) % 2, 0.55, 0.8)
    val = np.where((i // 10) % 2, 0.75, 1.0)
    rgb = [colorsys.hsv_to_rgb(h, s, v) for h, s, v in zip(hue, sat, val, strict=True)]
    out = np.ones((len(i), 4), dtype=np.float32)
    if len(i):
        out[:, :3] = rgb
    return out


def point_size(tracks: PoseTracks, frame_shape: tuple[int, ...] | None = None) -> float:
    """A point diameter that reads well: 1/150 of the video frame (or of the tracks' extent).

    Animals usually fill a tenth of the frame or less, so larger points hide the skeleton.
    """
    if frame_shape is not None:
        extent = float(max(frame_shape[:2]))
    else:
        finite = tracks.positions[~tracks.missing]
        extent = float(np.ptp(finite, axis=0).max()) if len(finite) else 0.0
    return extent / 150.0 if extent > 0 else 10.0


def skeleton_segments(tracks: PoseTracks) -> dict[str, np.ndarray]:
    """Every drawn skeleton segment: one per (row, individual, edge) with both ends present.

    Returns arrays of equal length ``n``: ``start`` and ``end`` (n, 1 + space) in layer
    order (frame, [z,] y, x), and ``row``, ``individual``, ``edge`` indices.
    """
    edges = tracks.edges
    pos = tracks.positions
    if not len(edges):
        empty = np.zeros((0, 1 + tracks.n_space), dtype=np.float32)
        none = np.zeros(0, dtype=np.int64)
        return {"start": empty, "end": empty, "row": none, "individual": none, "edge": none}
    a = pos[:, :, edges[:, 0]]  # (frames, individuals, edges, space)
    b = pos[:, :, edges[:, 1]]
    present = ~(np.isnan(a[..., 0]) | np.isnan(b[..., 0]))
    row, ind, edge = np.nonzero(present)
    frames = tracks.frame_index[row].astype(np.float32)
    return {
        "start": _layer_coords(frames, a[present]),
        "end": _layer_coords(frames, b[present]),
        "row": row,
        "individual": ind,
        "edge": edge,
    }


def _layer_coords(frames: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """(frame, [z,] y, x) float32 from a frame column and (x, y[, z]) positions.

    Column-major, for fast frame steps (see the module docstring).
    """
    out = np.empty((len(frames), 1 + xyz.shape[1]), dtype=np.float32, order="F")
    out[:, 0] = frames
    out[:, 1:] = xyz[:, ::-1]
    return out


def _axis_labels(n_space: int) -> tuple[str, ...]:
    return ("frame", "z", "y", "x") if n_space == 3 else ("frame", "y", "x")


def _cycle_dict(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return dict(zip(names, color_cycle(len(names)), strict=True))


# ---------------------------------------------------------------------------- to layers
def tracks_to_layers(
    tracks: PoseTracks,
    *,
    points: bool = True,
    skeleton: bool = True,
    trails: bool | str = False,
    video: bool = True,
    color_by: str = "auto",
    min_confidence: float | None = None,
    name: str | None = None,
) -> list[LayerDataTuple]:
    """LayerDataTuples for tracks, in drawing order: video, skeleton, points, trails.

    Parameters
    ----------
    points, skeleton, video
        Which layers to make. The video layer needs ``tracks.video_path`` and 2D tracks; a
        missing or unreadable video is a :class:`SkelmaeWarning`, never an error.
    trails
        False: none. True: a Tracks layer following each individual's centroid; a keypoint
        name: follow that keypoint instead. The tail spans the last 3 seconds.
    color_by
        ``"individual"``, ``"keypoint"`` or ``"auto"`` (individual when there are several,
        else keypoint). The skeleton follows the individual colours (edge colours when there
        is one individual).
    min_confidence
        Points scored below it get a red ring. Default 0.5 when the tracks have scores,
        else no marking; 0 turns the marking off.
    name
        Prefix of the layer names (default: the tracks file's stem).
    """
    if color_by not in _COLOR_BY:
        raise SkelmaeError(f"color_by must be one of {_COLOR_BY}, got {color_by!r}")
    base = name or (tracks.source_path.stem if tracks.source_path else "tracks")
    layers: list[LayerDataTuple] = []
    frame_shape = None
    if video and tracks.video_path is not None:
        video_layer = _video_layer(tracks)
        if video_layer is not None:
            layers.append(video_layer)
            frame_shape = video_layer[0].shape[1:3]
    size = point_size(tracks, frame_shape)
    if skeleton and len(tracks.edges):
        layers.append(_skeleton_layer(tracks, size, f"{base} skeleton"))
    if points:
        layers.append(_points_layer(tracks, color_by, min_confidence, size, f"{base} points"))
    if trails:
        keypoint = trails if isinstance(trails, str) else None
        layers.append(_trails_layer(tracks, keypoint, f"{base} trails"))
    return layers


def _points_layer(
    tracks: PoseTracks, color_by: str, min_confidence: float | None, size: float, name: str
) -> LayerDataTuple:
    n_ind, n_kp, n_space = tracks.n_individuals, tracks.n_keypoints, tracks.n_space
    flat = np.flatnonzero(~tracks.missing.ravel())  # row-major over (row, individual, kp)
    row = flat // (n_ind * n_kp)
    data = _layer_coords(tracks.frame_index[row], tracks.positions.reshape(-1, n_space)[flat])
    confidence = tracks.confidence.ravel()[flat]
    features = pd.DataFrame(
        {
            "individual": pd.Categorical.from_codes(
                (flat // n_kp) % n_ind, categories=list(tracks.individual_names)
            ),
            "keypoint": pd.Categorical.from_codes(
                flat % n_kp, categories=list(tracks.keypoint_names)
            ),
            "confidence": confidence,
        }
    )
    if color_by == "auto":
        color_by = "individual" if n_ind > 1 else "keypoint"
    names = tracks.individual_names if color_by == "individual" else tracks.keypoint_names
    if min_confidence is None:
        has_scores = bool(np.isfinite(tracks.confidence).any())
        min_confidence = DEFAULT_MIN_CONFIDENCE if has_scores else 0.0
    low = confidence < min_confidence  # NaN (no score) is never low
    kwargs: dict[str, Any] = {
        "name": name,
        "ndim": 1 + n_space,
        "axis_labels": _axis_labels(n_space),
        "features": features,
        "size": size,
        "border_color": "red",
        "border_width": np.where(low, LOW_CONFIDENCE_BORDER, 0.0).astype(np.float32),
        "border_width_is_relative": True,
        "metadata": {METADATA_KEY: _rebuild_facts(tracks, role="points")},
    }
    if len(data):  # napari cannot start a colour cycle on an empty layer
        kwargs.update(face_color=color_by, face_color_cycle=_cycle_dict(names))
    return data, kwargs, "points"


def _rebuild_facts(tracks: PoseTracks, role: str) -> dict[str, Any]:
    """The small facts, besides the points themselves, that rebuild the PoseTracks."""
    return {
        "role": role,
        "keypoint_names": list(tracks.keypoint_names),
        "individual_names": list(tracks.individual_names),
        "edges": tracks.edges.tolist(),
        "frame_index": tracks.frame_index,
        "fps": tracks.fps,
        "n_space": tracks.n_space,
        "source_path": None if tracks.source_path is None else str(tracks.source_path),
        "video_path": None if tracks.video_path is None else str(tracks.video_path),
        "tracks_metadata": dict(tracks.metadata),
    }


def _skeleton_layer(tracks: PoseTracks, size: float, name: str) -> LayerDataTuple:
    seg = skeleton_segments(tracks)
    vectors = np.empty((len(seg["start"]), 2, 1 + tracks.n_space), dtype=np.float32, order="F")
    vectors[:, 0] = seg["start"]
    np.subtract(seg["end"], seg["start"], out=vectors[:, 1])  # frame component is 0
    edge_names = [f"{a}-{b}" for a, b in tracks.edge_names]
    if len(set(edge_names)) < len(edge_names):  # a skeleton may list an edge twice
        edge_names = [f"{e} #{i}" for i, e in enumerate(edge_names)]
    features = pd.DataFrame(
        {
            "individual": pd.Categorical.from_codes(
                seg["individual"], categories=list(tracks.individual_names)
            ),
            "edge": pd.Categorical.from_codes(seg["edge"], categories=edge_names),
        }
    )
    by_individual = tracks.n_individuals > 1
    kwargs: dict[str, Any] = {
        "name": name,
        "ndim": 1 + tracks.n_space,
        "axis_labels": _axis_labels(tracks.n_space),
        "features": features,
        "edge_width": size / 4,
        "vector_style": "line",
        "opacity": 0.8,
        "metadata": {
            METADATA_KEY: {
                "role": "skeleton",
                "keypoint_names": list(tracks.keypoint_names),
                "edges": tracks.edges.tolist(),
            }
        },
    }
    if len(vectors):
        color_by = "individual" if by_individual else "edge"
        names = tracks.individual_names if by_individual else tuple(edge_names)
        kwargs.update(edge_color=color_by, edge_color_cycle=_cycle_dict(names))
    return vectors, kwargs, "vectors"


def _trails_layer(tracks: PoseTracks, keypoint: str | None, name: str) -> LayerDataTuple:
    if keypoint is None:
        present = ~tracks.missing
        counts = present.sum(axis=2)  # (frames, individuals)
        sums = np.where(present[..., None], tracks.positions, 0.0).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            follow = sums / counts[..., None]  # NaN where no keypoint is present
    else:
        if keypoint not in tracks.keypoint_names:
            raise SkelmaeError(
                f"trails: unknown keypoint {keypoint!r}; known: {list(tracks.keypoint_names)}"
            )
        follow = tracks.positions[:, :, tracks.keypoint_names.index(keypoint)]
    order = np.argsort(tracks.frame_index, kind="stable")  # Tracks need time order
    follow = follow[order]
    frames = tracks.frame_index[order].astype(np.float32)
    n = tracks.n_individuals
    parts, keys = [], []
    for i in range(n):
        ok = ~np.isnan(follow[:, i, 0])
        coords = _layer_coords(frames[ok], follow[ok, i])
        parts.append(np.column_stack([np.full(len(coords), i, np.float32), coords]))
        keys.append(np.full(len(coords), (i + 0.5) / n, np.float32))
    data = np.concatenate(parts)
    from napari.utils.colormaps import Colormap  # only the colour helper, no viewer

    colormap = Colormap(
        colors=color_cycle(n), controls=np.linspace(0.0, 1.0, n + 1), interpolation="zero",
        name="skelmae individuals",
    )
    tail = round(TRAIL_SECONDS * tracks.fps) if tracks.fps else TRAIL_FRAMES_WITHOUT_FPS
    kwargs: dict[str, Any] = {
        "name": name,
        "axis_labels": _axis_labels(tracks.n_space),
        "features": pd.DataFrame({"individual_colour": np.concatenate(keys)}),
        "color_by": "individual_colour",
        "colormaps_dict": {"individual_colour": colormap},
        "tail_length": max(int(tail), 1),
        "metadata": {METADATA_KEY: {"role": "trails", "keypoint": keypoint}},
    }
    return data, kwargs, "tracks"


def _video_layer(tracks: PoseTracks) -> LayerDataTuple | None:
    path = tracks.video_path
    if tracks.is_3d:
        _warn_video(f"Video '{path}' not shown: the tracks are 3D and the video is 2D.")
        return None
    from ..video import VideoReader

    try:
        reader = VideoReader(path)
    except (SkelmaeError, OSError) as e:  # the reader names the file and the problem
        _warn_video(f"{e}; showing tracks without video.")
        return None
    kwargs = {
        "name": f"{Path(path).stem} video",
        "rgb": True,  # VideoReader always gives (frames, height, width, 3) uint8
        "axis_labels": _axis_labels(2),
        "metadata": {METADATA_KEY: {"role": "video", "path": os.fspath(path)}},
    }
    return reader, kwargs, "image"


def _warn_video(message: str) -> None:
    warnings.warn(message, SkelmaeWarning, stacklevel=4)


# ---------------------------------------------------------------------------- back to tracks
def layers_to_tracks(points: Any, skeleton: Any = None) -> PoseTracks:
    """Rebuild the PoseTracks from a points layer made by :func:`tracks_to_layers`.

    ``points`` is a napari Points layer or a LayerDataTuple ``(data, kwargs, "points")``
    (napari's writers get the same shape: data and the layer's state). Each point is put
    back at its current coordinates, so points the user moved flow back; deleted points
    become missing, added ones fill their (frame, individual, keypoint) slot. ``skeleton``,
    the skeleton layer (or tuple) drawn with these points, supplies the edges when given.
    """
    data, features, meta = _layer_parts(points, "points")
    facts = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(facts, dict) or facts.get("role") != "points":
        raise SkelmaeError(
            "This points layer was not made by napari-skelmae (its metadata has no "
            f"'{METADATA_KEY}' entry), so it cannot be turned back into pose tracks."
        )
    kp_names = tuple(facts["keypoint_names"])
    ind_names = tuple(facts["individual_names"])
    frame_index = np.asarray(facts["frame_index"], dtype=np.int64)
    n_space = int(facts["n_space"])
    n_frames, n_ind, n_kp = len(frame_index), len(ind_names), len(kp_names)

    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 1 + n_space or len(features) != len(data):
        raise SkelmaeError(
            f"The points layer holds data of shape {data.shape} with {len(features)} feature "
            f"rows; expected (points, {1 + n_space}) with one feature row per point."
        )
    rows = _rows_of_frames(data[:, 0], frame_index)
    ind = _codes(features, "individual", ind_names)
    kp = _codes(features, "keypoint", kp_names)
    flat = (rows * n_ind + ind) * n_kp + kp
    if len(np.unique(flat)) != len(flat):
        raise SkelmaeError(
            "Two points of the layer are the same keypoint of the same individual in the "
            "same frame; delete one of them before saving."
        )
    positions = np.full((n_frames * n_ind * n_kp, n_space), np.nan, dtype=np.float32)
    positions[flat] = data[:, :0:-1]  # (frame, [z,] y, x) -> (x, y[, z])
    confidence = np.full(n_frames * n_ind * n_kp, np.nan, dtype=np.float32)
    if "confidence" in features:
        confidence[flat] = np.asarray(features["confidence"], dtype=np.float32)

    edges = facts["edges"]
    if skeleton is not None:
        edges = _skeleton_edges(skeleton, kp_names)
    return PoseTracks(
        positions=positions.reshape(n_frames, n_ind, n_kp, n_space),
        confidence=confidence.reshape(n_frames, n_ind, n_kp),
        keypoint_names=kp_names,
        individual_names=ind_names,
        edges=edges,
        frame_index=frame_index,
        fps=facts["fps"],
        source_path=facts["source_path"],
        video_path=facts["video_path"],
        metadata=dict(facts["tracks_metadata"]),
    )


def _layer_parts(layer: Any, layer_type: str) -> tuple[Any, pd.DataFrame, dict]:
    """(data, features, metadata) of a napari layer or of a LayerDataTuple."""
    if isinstance(layer, tuple):
        if len(layer) != 3 or layer[2] != layer_type or not isinstance(layer[1], dict):
            raise SkelmaeError(
                f"Expected a {layer_type} layer or its (data, kwargs, '{layer_type}') tuple."
            )
        data, kwargs, _ = layer
        return data, pd.DataFrame(kwargs.get("features", {})), kwargs.get("metadata") or {}
    from napari.layers import Points, Vectors

    # isinstance, not the class name: napari hands plugin widgets proxies of its layers
    cls = {"points": Points, "vectors": Vectors}[layer_type]
    if not isinstance(layer, cls):
        raise SkelmaeError(f"Expected a {layer_type} layer, got {type(layer).__name__}.")
    return layer.data, layer.features, layer.metadata


def _rows_of_frames(frames: np.ndarray, frame_index: np.ndarray) -> np.ndarray:
    """Row of each point from its frame coordinate; frames without a row are an error."""
    whole = np.rint(frames).astype(np.int64)
    order = np.argsort(frame_index, kind="stable")
    at = np.zeros(len(frames), dtype=np.int64)
    found = np.zeros(len(frames), dtype=bool)
    if len(order):
        sorted_frames = frame_index[order]
        at = np.minimum(np.searchsorted(sorted_frames, whole), len(order) - 1)
        found = (sorted_frames[at] == whole) & (np.abs(frames - whole) < 1e-3)
    if not found.all():
        raise SkelmaeError(
            f"{int((~found).sum())} point(s) lie on video frames that have no row in these "
            f"tracks (e.g. frame {frames[~found][0]:g}); points can only move within their frame."
        )
    return order[at] if len(order) else at


def _codes(features: pd.DataFrame, column: str, names: tuple[str, ...]) -> np.ndarray:
    """Index into ``names`` of each point's ``column`` feature (unknown names are an error)."""
    if column not in features:
        raise SkelmaeError(f"The points layer has no '{column}' feature; cannot place points.")
    codes = pd.Categorical(features[column], categories=list(names)).codes
    if (codes < 0).any():
        unknown = sorted({str(v) for v in np.asarray(features[column])[codes < 0]})
        raise SkelmaeError(f"Unknown {column} name(s) in the points layer: {unknown[:10]}")
    return codes.astype(np.int64)


def _skeleton_edges(skeleton: Any, kp_names: tuple[str, ...]) -> list:
    _, _, meta = _layer_parts(skeleton, "vectors")
    facts = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(facts, dict) or facts.get("role") != "skeleton":
        raise SkelmaeError("This skeleton layer was not made by napari-skelmae.")
    if tuple(facts["keypoint_names"]) != kp_names:
        raise SkelmaeError(
            "The skeleton layer belongs to other tracks (its keypoints differ from the points')."
        )
    return facts["edges"]


# ------------------------------------------------------------------- behaviour labels
#: the category of rows without a label (cluster -1, unlabelled behaviour)
NO_LABEL = "none"


def label_layers(
    points: Any,
    codes: np.ndarray,
    names: list[Any] | tuple[Any, ...],
    *,
    column: str = "cluster",
    skeleton: Any = None,
    color: bool = True,
) -> None:
    """Put per-(frame, individual) labels on the points (and skeleton) layer of some tracks.

    ``codes`` (frames, individuals) indexes ``names`` (-1 = no label) for the rows of the
    tracks the layer was made from (``layers_to_tracks(points).frame_index``). Every point and
    skeleton segment gets a categorical feature ``column`` (the row's label for its animal, or
    :data:`NO_LABEL`) and, with ``color``, is coloured by it with the palette the ethogram and
    embedding map use (``plots.category_colors``), so one behaviour has one colour
    everywhere. The names are recorded in ``metadata["skelmae"]["labels"][column]``. Works on
    napari layer objects (napari keeps the colours in step when features change).
    """
    from ..plots import UNLABELLED_COLOR, category_colors

    _, _, meta = _layer_parts(points, "points")
    facts = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(facts, dict) or facts.get("role") != "points":
        raise SkelmaeError("label_layers needs a points layer made by napari-skelmae.")
    if isinstance(points, tuple):
        raise SkelmaeError("label_layers needs napari layers (viewer.layers[...]), not tuples.")
    frame_index = np.asarray(facts["frame_index"], dtype=np.int64)
    ind_names = tuple(facts["individual_names"])
    codes = np.asarray(codes)
    if codes.shape != (len(frame_index), len(ind_names)):
        raise SkelmaeError(
            f"labels of shape {codes.shape} do not fit the layer's tracks: {len(frame_index)} "
            f"frames x {len(ind_names)} individuals"
        )
    labels = [str(n) for n in names]
    if NO_LABEL in labels or len(set(labels)) != len(labels):
        raise SkelmaeError(f"label names must be unique and not {NO_LABEL!r}: {labels}")
    categories = [*labels, NO_LABEL]
    palette = {**category_colors(labels), NO_LABEL: UNLABELLED_COLOR}
    cycle = {k: np.asarray(palette[k], dtype=np.float32) for k in categories}
    for layer in (points, skeleton):
        if layer is None:
            continue
        data = np.asarray(layer.data)
        frames = data[:, 0] if data.ndim == 2 else data[:, 0, 0]
        rows = _rows_of_frames(frames, frame_index)
        individual = _codes(layer.features, "individual", ind_names)
        values = codes[rows, individual] if len(rows) else np.zeros(0, np.int64)
        values = np.where((values >= 0) & (values < len(labels)), values, len(labels))
        features = layer.features.copy()
        features[column] = pd.Categorical.from_codes(values, categories=categories)
        layer.features = features
        if color and len(data):
            if layer is points:
                layer.face_color_cycle = cycle
                layer.face_color = column
            else:
                layer.edge_color_cycle = cycle
                layer.edge_color = column
    facts.setdefault("labels", {})[column] = labels

