"""SLEAP (.slp, analysis HDF5) and JABS readers on the real recordings in ../shared/data.

Values are checked against independent reads: h5py on the analysis files and the JABS file,
and sleap-io's own instance objects for the .slp files.
"""

from __future__ import annotations

import shutil
import warnings

import h5py
import numpy as np
import pytest
import sleap_io as sio

from napari_skelmae import load_tracks
from napari_skelmae.errors import SkelmaeWarning, TracksFileError
from napari_skelmae.io.jabs import JABS_KEYPOINTS
from napari_skelmae.io.jabs import read as read_jabs
from napari_skelmae.io.sleap import read_analysis_h5, read_slp

from .conftest import data_path

FLY13 = ["head", "thorax", "abdomen", "wingL", "wingR", "forelegL4", "forelegR4", "midlegL4",
         "midlegR4", "hindlegL4", "hindlegR4", "eyeL", "eyeR"]
COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
          "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]

# file, format, shape, individual names (None: not checked here), edges, missing fraction range
FILES = [
    ("sleap_flies13/demo-flies13-preds.slp", "slp", (1350, 2, 13, 2), ["track_0", "track_1"],
     12, (0.0, 0.1)),
    ("sleap_analysis_example/predictions.slp", "slp", (3000, 2, 13, 2), ["track_0", "track_1"],
     12, (0.015, 0.025)),
    ("sleap_analysis_example/predictions.analysis.h5", "sleap_analysis", (3000, 2, 13, 2),
     ["track_0", "track_1"], 0, (0.015, 0.025)),
    ("sleap_centered_pair/centered_pair_predictions.slp", "slp", (1100, 27, 24, 2),
     [str(i) for i in range(1, 28)], 23, (0.90, 0.95)),
    ("sleap_centered_pair/centered_pair_standard.analysis.h5", "sleap_analysis",
     (1100, 27, 24, 2), [str(i) for i in range(1, 28)], 23, (0.90, 0.95)),
    ("sleap_clip/clip.slp", "slp", (1500, 2, 13, 2), ["female", "male"], 12, (0.0, 0.05)),
    ("sleap_clip/clip.2node.slp", "slp", (1500, 2, 2, 2), ["female", "male"], 1, (0.0, 0.05)),
    ("sleap_clip/clip.predictions.slp", "slp", (1500, 2, 2, 2), ["female", "male"], 1,
     (0.0, 0.1)),
    ("sleap_dance/dance.mp4.labels.slp", "slp", (450, 1, 17, 2), ["instance_0"], 15,
     (0.0, 0.05)),
    ("jabs_mouse/example_pose_est_v5.h5", "jabs", (250, 4, 12, 2),
     ["mouse_1", "mouse_2", "mouse_3", "mouse_4"], 11, (0.1, 0.2)),
]


def _load(rel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)  # JABS: 5 unidentified instances
        return load_tracks(data_path(*rel.split("/")), video=False)


@pytest.mark.parametrize(("rel", "fmt", "shape", "names", "n_edges", "missing"), FILES,
                         ids=[f[0].split("/")[-1] for f in FILES])
def test_every_sleap_family_file_loads(rel, fmt, shape, names, n_edges, missing):
    t = _load(rel)
    assert t.metadata["format"] == fmt
    assert t.positions.shape == shape
    assert list(t.individual_names) == names
    assert len(t.edges) == n_edges
    assert missing[0] <= t.missing_fraction <= missing[1]
    np.testing.assert_array_equal(t.frame_index, np.arange(shape[0]))
    assert t.fps is None  # none of these files stores a frame rate
    assert t.source_path == data_path(*rel.split("/"))


def test_keypoint_names_in_file_order():
    assert list(_load("sleap_flies13/demo-flies13-preds.slp").keypoint_names) == FLY13
    assert list(_load("sleap_analysis_example/predictions.analysis.h5").keypoint_names) == FLY13
    assert list(_load("sleap_dance/dance.mp4.labels.slp").keypoint_names) == COCO17
    assert list(_load("jabs_mouse/example_pose_est_v5.h5").keypoint_names) == list(JABS_KEYPOINTS)


def test_flies13_skeleton_and_symmetries_match_sleap_io():
    p = data_path("sleap_flies13", "demo-flies13-preds.slp")
    t = read_slp(p)
    sk = sio.load_slp(str(p), open_videos=False).skeletons[0]
    assert [tuple(e) for e in t.edges.tolist()] == [tuple(e) for e in sk.edge_inds]
    assert t.metadata["skeleton"] == sk.name
    assert sorted(map(sorted, t.metadata["symmetries"])) == sorted(map(sorted, sk.symmetry_names))
    assert ["eyeL", "eyeR"] in t.metadata["symmetries"]
    assert t.video_path.name == "demo-flies13-preds.mp4"  # the name stored in the file
    assert t.metadata["n_user_instances"] == 2700
    assert np.isnan(t.confidence).all()  # proofread user points carry no score


def test_slp_values_match_sleap_io_instances():
    """Positions and scores of sampled instances equal sleap-io's instance objects."""
    p = data_path("sleap_clip", "clip.predictions.slp")
    t = read_slp(p)
    labels = sio.load_slp(str(p), open_videos=False)
    checked = 0
    for lf in labels.labeled_frames[::97]:
        row = int(np.flatnonzero(t.frame_index == lf.frame_idx)[0])
        for inst in lf.instances:
            col = t.individual_names.index(inst.track.name)
            seen = inst.points["visible"] & np.isfinite(inst.points["xy"]).all(axis=1)
            xy = np.where(seen[:, None], inst.points["xy"], np.nan)
            np.testing.assert_allclose(t.positions[row, col], xy, rtol=1e-6)
            score = np.where(seen, inst.points["score"], np.nan)
            np.testing.assert_allclose(t.confidence[row, col], score, rtol=1e-6)
            checked += 1
    assert checked > 20


def test_analysis_example_slp_equals_its_old_layout_analysis_h5():
    """The old analysis file stores the transpose (tracks, xy, nodes, frames) of the .slp data."""
    slp = read_slp(data_path("sleap_analysis_example", "predictions.slp"))
    h5 = read_analysis_h5(data_path("sleap_analysis_example", "predictions.analysis.h5"))
    with h5py.File(data_path("sleap_analysis_example", "predictions.analysis.h5"), "r") as f:
        raw = f["tracks"][()]
        assert "dims" not in f["tracks"].attrs and raw.shape == (2, 2, 13, 3000)
    direct = raw.transpose(3, 0, 2, 1).astype(np.float32)
    np.testing.assert_array_equal(slp.positions, direct)  # NaNs in the same places, same values
    np.testing.assert_array_equal(h5.positions, direct)
    assert h5.metadata["analysis_layout"] == "tracks-first"
    assert np.isnan(h5.confidence).all()  # this old file has no point_scores
    # The .slp holds the scores the analysis export left out.
    assert np.nanmean(slp.confidence) > 0.5


def test_centered_pair_new_layout_matches_h5py_and_slp():
    h5_path = data_path("sleap_centered_pair", "centered_pair_standard.analysis.h5")
    t = read_analysis_h5(h5_path)
    with h5py.File(h5_path, "r") as f:
        tracks, scores = f["tracks"][()], f["point_scores"][()]
        edge_inds = f["edge_inds"][()]
    assert tracks.shape == (1100, 27, 24, 2)
    np.testing.assert_array_equal(t.positions, tracks.astype(np.float32))
    seen = ~np.isnan(tracks[..., 0])
    np.testing.assert_array_equal(t.confidence[seen], scores[seen].astype(np.float32))
    np.testing.assert_array_equal(t.edges, edge_inds)
    assert t.metadata["analysis_layout"] == "frames-first"
    assert t.video_path.as_posix() == "tests/data/videos/centered_pair_low_quality.mp4"

    slp = read_slp(data_path("sleap_centered_pair", "centered_pair_predictions.slp"))
    np.testing.assert_array_equal(slp.positions, t.positions)
    np.testing.assert_allclose(slp.confidence[seen], t.confidence[seen], rtol=1e-6)
    np.testing.assert_array_equal(slp.edges, t.edges)
    assert len(slp.metadata["symmetries"]) == 10


def test_dance_user_instances_replace_their_predictions():
    """sleap_dance: one untracked human; frames 0-2 hold a user copy of the prediction."""
    p = data_path("sleap_dance", "dance.mp4.labels.slp")
    t = read_slp(p)
    labels = sio.load_slp(str(p), open_videos=False)
    user_frames = set()
    for lf in labels.labeled_frames:
        users = [i for i in lf.instances if not isinstance(i, sio.PredictedInstance)]
        preds = [i for i in lf.instances if isinstance(i, sio.PredictedInstance)]
        expected = users[0] if users else preds[0]
        if users:
            assert users[0].from_predicted is preds[0]
            user_frames.add(lf.frame_idx)
        xy = np.where(expected.points["visible"][:, None], expected.points["xy"], np.nan)
        np.testing.assert_allclose(t.positions[lf.frame_idx, 0], xy, rtol=1e-6)
    assert user_frames == {0, 1, 2}
    assert np.isnan(t.confidence[[0, 1, 2]]).all()
    assert np.isfinite(t.confidence[3:]).any()
    assert t.metadata["n_user_instances"] == 3 and t.metadata["n_predicted_instances"] == 447


def test_jabs_points_are_x_then_y_and_zero_confidence_is_missing():
    p = data_path("jabs_mouse", "example_pose_est_v5.h5")
    with pytest.warns(SkelmaeWarning, match="5 pose instance"):
        t = read_jabs(p)
    with h5py.File(p, "r") as f:
        points = f["poseest/points"][()]  # (frames, slots, 12, (y, x))
        conf = f["poseest/confidence"][()]
        ids = f["poseest/instance_embed_id"][()]
    assert t.fps is None and t.metadata["jabs_pose_version"] == 5
    assert t.metadata["cm_per_pixel"] == pytest.approx(0.07928, abs=1e-5)
    for frame in (0, 77, 249):
        for slot in range(points.shape[1]):
            if ids[frame, slot] == 0:
                continue
            col = t.individual_names.index(f"mouse_{ids[frame, slot]}")
            ok = conf[frame, slot] > 0
            x, y = t.positions[frame, col, ok].T
            np.testing.assert_array_equal(x, points[frame, slot, ok, 1])
            np.testing.assert_array_equal(y, points[frame, slot, ok, 0])
            assert np.isnan(t.positions[frame, col, ~ok]).all()
    identified = ids > 0
    assert int(t.missing.sum()) == int((conf[identified] == 0).sum()) + 5 * 12  # mouse_1 absent
    assert (t.edges.max() < 12) and len(t.edges) == 11
    # Identities never jump: a mouse moves a few pixels per frame, not across the arena.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames where a mouse is absent
        centroids = np.nanmean(t.positions, axis=2)
    step = np.linalg.norm(np.diff(centroids, axis=0), axis=-1)
    assert np.nanmedian(step) < 10


def test_read_slp_gives_every_frame():
    """(Load times are benchmarks/bench_load.py's, not a test's.)"""
    t = read_slp(data_path("sleap_analysis_example", "predictions.slp"))
    assert t.n_frames == 3000


def test_fps_argument_overrides():
    assert read_slp(data_path("sleap_clip", "clip.slp"), fps=25).fps == 25.0
    assert read_analysis_h5(
        data_path("sleap_centered_pair", "centered_pair_standard.analysis.h5"), fps=15
    ).fps == 15.0


# ------------------------------------------------------------------ rules on built files
def _skeleton():
    return sio.Skeleton(["a", "b", "c"], edges=[("a", "b"), ("b", "c")], name="tri")


def _pred(sk, xy, track=None, score=0.5):
    return sio.PredictedInstance.from_numpy(
        np.asarray(xy, float), skeleton=sk, point_scores=np.full(3, score), score=1.0, track=track
    )


def _user(sk, xy, track=None, from_predicted=None):
    return sio.Instance.from_numpy(np.asarray(xy, float), skeleton=sk, track=track,
                                   from_predicted=from_predicted)


def _pts(v):
    return np.full((3, 2), float(v))


def test_user_wins_duplicate_frames_merge_and_untracked_get_extra_individuals(tmp_path):
    sk = _skeleton()
    video = sio.Video(filename="one.mp4", open_backend=False)
    tx, ty = sio.Track("x"), sio.Track("y")
    p_x = _pred(sk, _pts(1), tx)
    p_y = _pred(sk, _pts(2), ty)
    u_x = _user(sk, _pts(10), tx)  # user instance of track x in a duplicate frame
    p_free = _pred(sk, _pts(3))  # untracked prediction ...
    u_free = _user(sk, _pts(30), None, from_predicted=p_free)  # ... corrected by the user
    p_late = _pred(sk, _pts(4), None)
    frames = [
        sio.LabeledFrame(video=video, frame_idx=7, instances=[p_x, p_y, p_free]),
        sio.LabeledFrame(video=video, frame_idx=7, instances=[u_x, u_free]),
        sio.LabeledFrame(video=video, frame_idx=2, instances=[p_late, _pred(sk, _pts(5))]),
    ]
    path = tmp_path / "rules.slp"
    sio.Labels(frames, videos=[video], skeletons=[sk], tracks=[tx, ty]).save(str(path))

    t = read_slp(path)
    assert list(t.frame_index) == [2, 7]  # sorted, duplicate frame 7 merged into one row
    assert list(t.individual_names) == ["x", "y", "untracked_0", "untracked_1"]
    assert t.positions[1, 0, 0, 0] == 10  # user beats the predicted instance of track x
    assert np.isnan(t.confidence[1, 0]).all()
    assert t.positions[1, 1, 0, 0] == 2 and t.confidence[1, 1, 0] == pytest.approx(0.5)
    assert t.positions[1, 2, 0, 0] == 30  # the user copy replaced its prediction
    assert np.isnan(t.positions[1, 3]).all()
    assert t.positions[0, 2, 0, 0] == 4 and t.positions[0, 3, 0, 0] == 5
    assert np.isnan(t.positions[0, :2]).all()
    assert [tuple(e) for e in t.edges.tolist()] == [(0, 1), (1, 2)]


def test_user_copy_inherits_the_track_of_its_prediction(tmp_path):
    sk = _skeleton()
    video = sio.Video(filename="one.mp4", open_backend=False)
    tx = sio.Track("x")
    p_x = _pred(sk, _pts(1), tx)
    frames = [sio.LabeledFrame(video=video, frame_idx=0,
                               instances=[p_x, _user(sk, _pts(9), None, from_predicted=p_x)])]
    path = tmp_path / "inherit.slp"
    sio.Labels(frames, videos=[video], skeletons=[sk], tracks=[tx]).save(str(path))
    t = read_slp(path)
    assert list(t.individual_names) == ["x"]
    assert t.positions[0, 0, 0, 0] == 9


def test_several_videos_warn_and_video_index_chooses(tmp_path):
    sk = _skeleton()
    v0 = sio.Video(filename="first.mp4", open_backend=False)
    v1 = sio.Video(filename="second.mp4", open_backend=False)
    v2 = sio.Video(filename="unlabelled.mp4", open_backend=False)
    frames = [sio.LabeledFrame(video=v1, frame_idx=3, instances=[_user(sk, _pts(1))]),
              sio.LabeledFrame(video=v0, frame_idx=5, instances=[_user(sk, _pts(2)),
                                                                 _user(sk, _pts(8))])]
    path = tmp_path / "multi.slp"
    sio.Labels(frames, videos=[v0, v1, v2], skeletons=[sk]).save(str(path))
    with pytest.warns(SkelmaeWarning, match="second.mp4"):
        t = read_slp(path)
    assert t.video_path.name == "first.mp4" and list(t.frame_index) == [5]
    assert list(t.individual_names) == ["instance_0", "instance_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t1 = read_slp(path, video_index=1)
    assert t1.video_path.name == "second.mp4" and t1.positions[0, 0, 0, 0] == 1
    with pytest.raises(TracksFileError, match="no labelled frames"):
        read_slp(path, video_index=2)
    with pytest.raises(TracksFileError, match="out of range"):
        read_slp(path, video_index=3)


# ------------------------------------------------------------------ broken input
def _truncated(tmp_path, rel, name):
    src = data_path(*rel.split("/"))
    out = tmp_path / name
    data = src.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.mark.parametrize("reader", [read_slp, load_tracks])
def test_truncated_slp(tmp_path, reader):
    path = _truncated(tmp_path, "sleap_flies13/demo-flies13-preds.slp", "half.slp")
    with pytest.raises(TracksFileError, match="half.slp"):
        reader(path)


def test_slp_missing_datasets(tmp_path):
    path = tmp_path / "no_instances.slp"
    shutil.copy(data_path("sleap_clip", "clip.2node.slp"), path)
    with h5py.File(path, "a") as f:
        del f["instances"]
        del f["points"]
    with pytest.raises(TracksFileError, match=r"no_instances\.slp.*missing \['instances'"):
        read_slp(path)
    with pytest.raises(TracksFileError, match="no_instances.slp"):
        load_tracks(path, video=False)


@pytest.mark.parametrize("reader", [read_analysis_h5, load_tracks])
def test_truncated_analysis_h5(tmp_path, reader):
    path = _truncated(tmp_path, "sleap_centered_pair/centered_pair_standard.analysis.h5",
                      "half.analysis.h5")
    with pytest.raises(TracksFileError, match=r"half\.analysis\.h5"):
        reader(path)


def _write_analysis(path, tracks, nodes, track_names, dims=None):
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("tracks", data=tracks)
        if dims:
            ds.attrs["dims"] = dims
        f.create_dataset("node_names", data=np.array(nodes, dtype="S"))
        f.create_dataset("track_names", data=np.array(track_names, dtype="S"))


def test_analysis_h5_shape_not_matching_names(tmp_path):
    path = tmp_path / "bad.analysis.h5"
    _write_analysis(path, np.zeros((10, 2, 5, 2)), ["a", "b", "c"], ["t0", "t1"])
    with pytest.raises(TracksFileError, match=r"bad\.analysis\.h5.*\(10, 2, 5, 2\).*3 node_names"):
        read_analysis_h5(path)
    with pytest.raises(TracksFileError, match="bad.analysis.h5"):
        load_tracks(path, video=False)


def test_analysis_h5_ambiguous_layout_is_refused_unless_dims_say(tmp_path):
    # (2, 2, 3, 2) is 2 frames x 2 tracks x 3 nodes x xy *and* 2 tracks x xy x 3 nodes x 2 frames
    data = np.arange(24, dtype=float).reshape(2, 2, 3, 2)
    path = tmp_path / "ambiguous.analysis.h5"
    _write_analysis(path, data, ["a", "b", "c"], ["t0", "t1"])
    with pytest.raises(TracksFileError, match="fits both"):
        read_analysis_h5(path)
    _write_analysis(path, data, ["a", "b", "c"], ["t0", "t1"],
                    dims='["track", "xy", "node", "frame"]')
    t = read_analysis_h5(path)
    np.testing.assert_array_equal(t.positions, data.transpose(3, 0, 2, 1))
