"""PoseTracks <-> napari layer data, on real recordings.

Expected coordinates, counts and names are checked against direct reads of the files
(sleap-io's ``Labels.numpy()``, pandas ``read_hdf``), not against our own readers' output.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sleap_io as sio

from napari_skelmae import PoseTracks, SkelmaeError, SkelmaeWarning, load_tracks
from napari_skelmae.napari.layers import (
    DEFAULT_MIN_CONFIDENCE,
    color_cycle,
    layers_to_tracks,
    skeleton_segments,
    tracks_to_layers,
)

from .conftest import data_path

FLIES13 = ("sleap_flies13", "demo-flies13-preds.slp")
ANALYSIS = ("sleap_analysis_example", "predictions.slp")
FLY_NODES = ["head", "thorax", "abdomen", "wingL", "wingR", "forelegL4", "forelegR4",
             "midlegL4", "midlegR4", "hindlegL4", "hindlegR4", "eyeL", "eyeR"]


def load(parts: tuple[str, str], **kw) -> PoseTracks:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)
        return load_tracks(data_path(*parts), **kw)


def by_type(layers: list[tuple]) -> dict[str, tuple]:
    return {t[2]: t for t in layers}


@pytest.fixture(scope="module")
def flies13() -> PoseTracks:
    return load(FLIES13, video=False)


@pytest.fixture(scope="module")
def flies13_numpy() -> np.ndarray:
    """(1350, 2, 13, 2) x/y straight from sleap-io, the independent reference."""
    return sio.load_slp(str(data_path(*FLIES13))).numpy()


@pytest.fixture(scope="module")
def analysis() -> PoseTracks:
    return load(ANALYSIS, video=False)


@pytest.fixture(scope="module")
def reaching_3d() -> tuple[PoseTracks, pd.DataFrame]:
    """The real 3D DeepLabCut file, built by hand from pandas (x, y, z per bodypart)."""
    df = pd.read_hdf(data_path("dlc_reaching_kinematics", "reachingDEMO_3D.h5"))
    parts = list(dict.fromkeys(df.columns.get_level_values("bodyparts")))
    xyz = df.to_numpy(dtype=np.float32).reshape(len(df), 1, len(parts), 3)
    chain = [(i, i + 1) for i in range(5)]  # a made-up chain over the first six bodyparts
    tracks = PoseTracks(xyz, keypoint_names=parts, individual_names=["mouse"], edges=chain,
                        frame_index=df.index.to_numpy(), fps=100.0, source_path="reach3d.h5",
                        metadata={"format": "dlc", "scorer": "Reaching_3D"})
    return tracks, df


# ---------------------------------------------------------------------------- round trips
def test_round_trip_exact_flies13(flies13):
    points = by_type(tracks_to_layers(flies13, video=False))["points"]
    back = layers_to_tracks(points)
    assert flies13.equals(back)
    assert back.metadata == flies13.metadata
    assert list(points[1]["metadata"]) == ["skelmae"]


def test_round_trip_exact_with_nans_and_confidence(analysis):
    assert 0.01 < analysis.missing_fraction < 0.03  # the README's "2 % NaN"
    assert np.isfinite(analysis.confidence).any()
    back = layers_to_tracks(by_type(tracks_to_layers(analysis, video=False))["points"])
    assert analysis.equals(back)
    assert np.array_equal(back.confidence, analysis.confidence, equal_nan=True)


def test_round_trip_keeps_fps_and_paths(flies13, tmp_path):
    video = tmp_path / "v.mp4"
    t = flies13.replace(fps=25.0, video_path=video)
    points = by_type(tracks_to_layers(t, video=False))["points"]
    back = layers_to_tracks(points)
    assert back.fps == 25.0 and back.video_path == video
    assert back.source_path == data_path(*FLIES13)
    assert t.equals(back)


def test_round_trip_3d(reaching_3d):
    tracks, df = reaching_3d
    points = by_type(tracks_to_layers(tracks))["points"]
    data = points[0]
    assert data.shape == (int(df.notna().to_numpy().reshape(len(df), -1, 3).all(-1).sum()), 4)
    # (frame, z, y, x): the first present point of the file is 'nose' at the first frame
    first = df.xs("nose", axis=1, level="bodyparts").iloc[0].droplevel("scorer")
    assert data[0].tolist() == pytest.approx([df.index[0], first["z"], first["y"], first["x"]])
    assert points[1]["axis_labels"] == ("frame", "z", "y", "x")
    assert tracks.equals(layers_to_tracks(points))


def test_round_trip_sparse_unordered_frames(flies13, flies13_numpy):
    frames = [1200, 3, 512, 77, 999, 40]
    sparse = flies13.sel(frames=frames)
    assert sparse.frame_index.tolist() == frames
    data, kwargs, _ = by_type(tracks_to_layers(sparse, video=False))["points"]
    # the frame axis holds the video frame, not the row number
    assert sorted(set(data[:, 0].astype(int).tolist())) == sorted(frames)
    first = flies13_numpy[1200, 0, 0]  # track_0's head at video frame 1200 (row 0)
    assert data[0].tolist() == pytest.approx([1200, first[1], first[0]])
    assert sparse.equals(layers_to_tracks((data, kwargs, "points")))


# ---------------------------------------------------------------------------- points
def test_points_coordinates_features_and_count(flies13, flies13_numpy):
    data, kwargs, kind = by_type(tracks_to_layers(flies13, video=False))["points"]
    present = ~np.isnan(flies13_numpy[..., 0])
    assert kind == "points" and data.shape == (present.sum(), 3)
    f, i, k = np.nonzero(present)
    # coordinates are (frame, y, x) while sleap-io gives (x, y)
    assert np.array_equal(data[:, 0], f)
    assert np.array_equal(data[:, 1], flies13_numpy[f, i, k, 1])
    assert np.array_equal(data[:, 2], flies13_numpy[f, i, k, 0])
    feats = kwargs["features"]
    assert list(feats.columns) == ["individual", "keypoint", "confidence"]
    assert list(feats["individual"].cat.categories) == ["track_0", "track_1"]
    assert list(feats["keypoint"].cat.categories) == FLY_NODES
    assert np.array_equal(feats["individual"].cat.codes, i)
    assert np.array_equal(feats["keypoint"].cat.codes, k)
    assert np.array_equal(feats["confidence"], flies13.confidence[f, i, k], equal_nan=True)


def test_points_colour_by_individual_then_by_keypoint(flies13, reaching_3d):
    from napari.layers import Layer, Points

    data, kwargs, _ = by_type(tracks_to_layers(flies13, video=False))["points"]
    layer = Points(data, **kwargs)
    codes = kwargs["features"]["individual"].cat.codes.to_numpy()
    fly0, fly1 = np.unique(layer.face_color[codes == 0], axis=0), np.unique(
        layer.face_color[codes == 1], axis=0)
    assert len(fly0) == 1 and len(fly1) == 1 and not np.allclose(fly0, fly1)
    assert np.allclose(fly0[0], color_cycle(2)[0])

    by_kp = Layer.create(*by_type(tracks_to_layers(flies13, video=False, color_by="keypoint"))
                         ["points"])
    assert len(np.unique(by_kp.face_color, axis=0)) == 13

    one_animal, _ = reaching_3d  # one individual: "auto" colours by keypoint
    data3, kw3, _ = by_type(tracks_to_layers(one_animal))["points"]
    assert kw3["face_color"] == "keypoint"
    seen = (~one_animal.missing).any(axis=(0, 1)).sum()  # two bodyparts are never tracked
    assert seen == one_animal.n_keypoints - 2
    assert len(np.unique(Points(data3, **kw3).face_color, axis=0)) == seen


def test_colours_follow_edited_features(flies13):
    """Colours come from a feature, so correcting a point's identity recolours it."""
    from napari.layers import Points

    data, kwargs, _ = by_type(tracks_to_layers(flies13, video=False))["points"]
    layer = Points(data, **kwargs)
    feats = layer.features.copy()
    feats.loc[0, "individual"] = "track_1"
    layer.features = feats
    assert np.allclose(layer.face_color[0], color_cycle(2)[1])


def test_low_confidence_points_get_a_red_ring(analysis):
    from napari.layers import Points

    data, kwargs, _ = by_type(tracks_to_layers(analysis, video=False))["points"]
    conf = kwargs["features"]["confidence"].to_numpy()
    low = conf < DEFAULT_MIN_CONFIDENCE
    assert 0 < low.sum() < len(low)
    layer = Points(data, **kwargs)
    assert np.array_equal(layer.border_width > 0, low)
    assert np.allclose(layer.border_color[low], [1, 0, 0, 1])
    _, none_marked, _ = by_type(tracks_to_layers(analysis, video=False, min_confidence=0))[
        "points"]
    assert not none_marked["border_width"].any()


def test_no_ring_without_scores(reaching_3d):
    tracks, _ = reaching_3d  # 3D file: no likelihood column, confidence all NaN
    _, kwargs, _ = by_type(tracks_to_layers(tracks))["points"]
    assert not kwargs["border_width"].any()


def test_point_size_follows_image_size(flies13):
    _, kwargs, _ = by_type(tracks_to_layers(flies13, video=False))["points"]
    assert 3 < kwargs["size"] < 15  # flies in a 1024 px frame


# ---------------------------------------------------------------------------- skeleton
def test_skeleton_vectors_count_and_geometry(flies13, flies13_numpy):
    labels = sio.load_slp(str(data_path(*FLIES13)))
    edges = np.array(labels.skeleton.edge_inds)
    assert len(edges) == 12
    a, b = flies13_numpy[:, :, edges[:, 0]], flies13_numpy[:, :, edges[:, 1]]
    both = ~np.isnan(a[..., 0]) & ~np.isnan(b[..., 0])
    vectors, kwargs, kind = by_type(tracks_to_layers(flies13, video=False))["vectors"]
    assert kind == "vectors" and vectors.shape == (both.sum(), 2, 3)
    f, i, e = np.nonzero(both)
    assert np.array_equal(vectors[:, 0, 0], f)
    assert not vectors[:, 1, 0].any()  # no reach along the frame axis
    start = a[f, i, e][:, ::-1]
    assert np.array_equal(vectors[:, 0, 1:], start)
    assert np.allclose(vectors[:, 0, 1:] + vectors[:, 1, 1:], b[f, i, e][:, ::-1], atol=1e-3)
    assert kwargs["edge_color"] == "individual"
    assert list(kwargs["features"]["edge"].cat.categories)[0] == "head-eyeL"


def test_skeleton_3d_and_single_individual_colours_by_edge(reaching_3d):
    tracks, _ = reaching_3d
    vectors, kwargs, _ = by_type(tracks_to_layers(tracks))["vectors"]
    seg = skeleton_segments(tracks)
    assert vectors.shape == (len(seg["row"]), 2, 4)
    assert kwargs["edge_color"] == "edge"


def test_skeleton_with_a_repeated_edge(flies13):
    from napari.layers import Layer

    twice = flies13.replace(edges=[(1, 0), (1, 0)])
    vectors, kwargs, kind = by_type(tracks_to_layers(twice, video=False))["vectors"]
    head_thorax = (~flies13.missing[:, :, [0, 1]]).all(axis=-1).sum()
    assert len(vectors) == 2 * head_thorax
    assert Layer.create(vectors, kwargs, kind).edge_color.shape == (len(vectors), 4)


def test_no_skeleton_layer_without_edges(reaching_3d):
    tracks, _ = reaching_3d
    assert "vectors" not in by_type(tracks_to_layers(tracks.replace(edges=None)))


# ---------------------------------------------------------------------------- edits flow back
def test_moved_and_deleted_points_flow_back(flies13):
    from napari.layers import Layer

    assert np.array_equal(flies13.frame_index, np.arange(1350))  # row == video frame
    layer = Layer.create(*by_type(tracks_to_layers(flies13, video=False))["points"])

    def slot(j: int) -> tuple[int, int, int]:
        f = layer.features.iloc[j]
        return (int(layer.data[j, 0]), flies13.individual_names.index(f["individual"]),
                flies13.keypoint_names.index(f["keypoint"]))

    moved, deleted = slot(5), slot(7)
    data = layer.data.copy()
    data[5, 1:] += (3.0, -4.0)  # (dy, dx), as a drag in the viewer does
    layer.data = data
    layer.selected_data = {7}
    layer.remove_selected()
    back = layers_to_tracks(layer)
    expected = flies13.positions.copy()
    expected[moved] = (data[5, 2], data[5, 1])
    expected[deleted] = np.nan
    assert np.array_equal(back.positions, expected, equal_nan=True)
    assert np.isnan(back.confidence[deleted])


def test_added_point_fills_its_slot(flies13):
    data, kwargs, _ = by_type(tracks_to_layers(flies13, video=False))["points"]
    frame, ind, kp = (int(x[0]) for x in np.nonzero(flies13.missing))
    extra = pd.DataFrame({"individual": [flies13.individual_names[ind]],
                          "keypoint": [flies13.keypoint_names[kp]], "confidence": [np.nan]})
    feats = pd.concat([kwargs["features"], extra], ignore_index=True)
    added = np.concatenate([data, [[frame, 100.0, 200.0]]]).astype(np.float32)
    back = layers_to_tracks((added, {**kwargs, "features": feats}, "points"))
    assert back.positions[frame, ind, kp].tolist() == [200.0, 100.0]
    assert back.missing.sum() == flies13.missing.sum() - 1


def test_errors_name_the_problem(flies13):
    from napari.layers import Points

    data, kwargs, _ = by_type(tracks_to_layers(flies13, video=False))["points"]
    with pytest.raises(SkelmaeError, match="not made by napari-skelmae"):
        layers_to_tracks(Points(data))
    with pytest.raises(SkelmaeError, match="points layer"):
        layers_to_tracks((data, kwargs, "shapes"))
    off = data.copy()
    off[0, 0] = 99999
    with pytest.raises(SkelmaeError, match="no row"):
        layers_to_tracks((off, kwargs, "points"))
    twice = np.concatenate([data, data[:1]])
    feats = pd.concat([kwargs["features"], kwargs["features"].iloc[:1]], ignore_index=True)
    with pytest.raises(SkelmaeError, match="same keypoint"):
        layers_to_tracks((twice, {**kwargs, "features": feats}, "points"))
    with pytest.raises(SkelmaeError, match="color_by"):
        tracks_to_layers(flies13, color_by="track")


# ---------------------------------------------------------------------------- other layers
def test_real_napari_layers_in_drawing_order(analysis):
    from napari.layers import Layer

    layers = tracks_to_layers(analysis.replace(fps=25.0), video=False, trails=True)
    assert [t[2] for t in layers] == ["vectors", "points", "tracks"]
    made = [Layer.create(*t) for t in layers]
    assert [type(x).__name__ for x in made] == ["Vectors", "Points", "Tracks"]
    assert made[1].name == "predictions points"
    trails = made[2]
    centroid_present = (~analysis.missing).any(axis=2)  # (frames, individuals)
    assert len(trails.data) == centroid_present.sum()
    assert sorted(np.unique(trails.data[:, 0]).tolist()) == [0, 1]
    assert trails.tail_length == 75  # 3 s at 25 fps
    for fly in (0, 1):  # each trail in its individual's colour
        assert np.allclose(trails.track_colors[trails.data[:, 0] == fly], color_cycle(2)[fly])


def test_trails_follow_a_keypoint(analysis):
    data, _, _ = by_type(tracks_to_layers(analysis, video=False, trails="thorax"))["tracks"]
    thorax = analysis.positions[:, 0, 1]
    ok = ~np.isnan(thorax[:, 0])
    fly0 = data[data[:, 0] == 0]
    assert np.array_equal(fly0[:, 2:], thorax[ok][:, ::-1])
    with pytest.raises(SkelmaeError, match="unknown keypoint"):
        tracks_to_layers(analysis, trails="tail")


def test_missing_or_unreadable_video_is_a_warning(flies13, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    for video in (tmp_path / "gone.mp4", broken):
        with pytest.warns(SkelmaeWarning, match=video.name):
            layers = tracks_to_layers(flies13.replace(video_path=video))
        assert [t[2] for t in layers] == ["vectors", "points"]


def test_no_video_under_3d_tracks(reaching_3d):
    tracks, _ = reaching_3d
    video = data_path(*FLIES13).with_suffix(".mp4")
    with pytest.warns(SkelmaeWarning, match="3D"):
        layers = tracks_to_layers(tracks.replace(video_path=video))
    assert [t[2] for t in layers] == ["vectors", "points"]


def test_video_layer_under_everything():
    tracks = load(FLIES13)
    assert tracks.video_path is not None and tracks.video_path.name == "demo-flies13-preds.mp4"
    layers = tracks_to_layers(tracks)
    video, kwargs, kind = layers[0]
    assert kind == "image" and kwargs["name"] == "demo-flies13-preds video"
    assert video.shape[:3] == (1350, 1024, 1024)
    assert [t[2] for t in layers[1:]] == ["vectors", "points"]


def test_color_cycle_is_distinct():
    colours = color_cycle(30)
    assert colours.shape == (30, 4) and colours.dtype == np.float32
    assert len(np.unique(colours.round(3), axis=0)) == 30
    assert color_cycle(0).shape == (0, 4)


# ---------------------------------------------------------------------------- viewer
@pytest.mark.gui
def test_viewer_steps_frames(make_napari_viewer, analysis):
    from napari.layers import Layer

    video = data_path(ANALYSIS[0], "20190128_113421.120s.mp4")
    viewer = make_napari_viewer(show=False)
    for t in tracks_to_layers(analysis.replace(video_path=video), trails=True):
        viewer.add_layer(Layer.create(*t))
    assert [x.name for x in viewer.layers] == [
        "20190128_113421.120s video", "predictions skeleton", "predictions points",
        "predictions trails"]
    points = viewer.layers["predictions points"]
    skeleton = viewer.layers["predictions skeleton"]
    assert viewer.dims.axis_labels == ("frame", "y", "x")
    assert viewer.dims.range[0].stop >= 2999
    assert np.array_equal(analysis.frame_index, np.arange(3000))  # row == video frame
    segment_rows = skeleton_segments(analysis)["row"]
    for frame in (0, 1234, 2999):
        viewer.dims.set_current_step(0, frame)
        assert len(points._view_indices) == (~analysis.missing[frame]).sum()
        assert (points.data[points._view_indices, 0] == frame).all()
        assert len(skeleton._view_indices) == (segment_rows == frame).sum() > 0
        assert (skeleton.data[skeleton._view_indices, 0, 0] == frame).all()
