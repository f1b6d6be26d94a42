"""PoseTracks: validation at construction, selection, equality."""

from __future__ import annotations

import numpy as np
import pytest

from napari_skelmae import PoseTracks, TracksValidationError


def make(frames=6, ind=2, kp=3, space=2, **kw):
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(frames, ind, kp, space)).astype(np.float32)
    conf = rng.uniform(size=(frames, ind, kp)).astype(np.float32)
    kw.setdefault("keypoint_names", ["head", "thorax", "abdomen"][:kp])
    kw.setdefault("edges", [(0, 1), (1, 2)] if kp == 3 else None)
    return PoseTracks(pos, conf, **kw)


def test_normalises_dtypes_and_defaults():
    t = PoseTracks(np.zeros((4, 1, 2, 2), dtype=np.float64))
    assert t.positions.dtype == np.float32
    assert t.confidence.shape == (4, 1, 2) and np.isnan(t.confidence).all()
    assert t.keypoint_names == ("kp0", "kp1")
    assert t.individual_names == ("individual_0",)
    assert t.edges.shape == (0, 2)
    assert t.frame_index.tolist() == [0, 1, 2, 3]
    assert t.fps is None and t.video_path is None


def test_missing_point_is_missing_as_a_whole():
    pos = np.ones((2, 1, 2, 2), np.float32)
    pos[0, 0, 0, 1] = np.nan  # only y missing
    conf = np.full((2, 1, 2), 0.9, np.float32)
    t = PoseTracks(pos, conf)
    assert np.isnan(t.positions[0, 0, 0]).all()
    assert np.isnan(t.confidence[0, 0, 0])  # a missing point has no confidence
    assert t.confidence[1, 0, 0] == pytest.approx(0.9)
    assert t.missing.sum() == 1
    assert t.missing_fraction == pytest.approx(1 / 4)


def test_does_not_alias_callers_array():
    pos = np.zeros((2, 1, 1, 2), np.float32)
    t = PoseTracks(pos)
    pos[:] = 5
    assert (t.positions == 0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(positions=np.zeros((3, 2, 2))), "4-D"),
        (dict(positions=np.zeros((3, 1, 2, 4))), "size 2 or 3"),
        (dict(positions=np.full((3, 1, 2, 2), np.inf)), "infinite"),
        (dict(positions=np.zeros((3, 1, 2, 2)), confidence=np.zeros((3, 2))), "confidence shape"),
        (dict(positions=np.zeros((3, 1, 2, 2)), keypoint_names=["a"]), "1 keypoint names"),
        (dict(positions=np.zeros((3, 1, 2, 2)), keypoint_names=["a", "a"]), "unique"),
        (dict(positions=np.zeros((3, 1, 2, 2)), edges=[(0, 2)]), "outside"),
        (dict(positions=np.zeros((3, 1, 2, 2)), frame_index=[0, 1]), "frame_index"),
        (dict(positions=np.zeros((3, 1, 2, 2)), frame_index=[0, 1, 1]), "twice"),
        (dict(positions=np.zeros((3, 1, 2, 2)), frame_index=[-1, 0, 1]), ">= 0"),
        (dict(positions=np.zeros((3, 1, 2, 2)), frame_index=[0.5, 1, 2]), "whole"),
        (dict(positions=np.zeros((3, 1, 2, 2)), fps=0), "fps"),
        (dict(positions=np.array([[[["a", "b"]]]])), "numeric"),
    ],
)
def test_invalid_arrays_are_refused(kwargs, match):
    with pytest.raises(TracksValidationError, match=match):
        PoseTracks(**kwargs)


def test_validation_error_is_a_value_error():
    assert issubclass(TracksValidationError, ValueError)


def test_sel_by_names_and_video_frames():
    t = make(frame_index=[10, 12, 14, 16, 18, 20], individual_names=["f", "m"], fps=25)
    s = t.sel(frames=[14, 20], individuals="m", keypoints=["abdomen", "thorax"])
    assert s.positions.shape == (2, 1, 2, 2)
    assert s.frame_index.tolist() == [14, 20]
    assert s.individual_names == ("m",)
    assert s.keypoint_names == ("abdomen", "thorax")
    np.testing.assert_array_equal(s.positions[:, 0, 0], t.positions[[2, 5], 1, 2])
    np.testing.assert_array_equal(s.confidence[:, 0, 1], t.confidence[[2, 5], 1, 1])
    # the edge thorax-abdomen survives, re-indexed to the new order
    assert s.edge_names == [("thorax", "abdomen")]
    assert s.fps == 25


def test_sel_errors_name_the_problem():
    t = make()
    with pytest.raises(TracksValidationError, match="unknown keypoint 'tail'"):
        t.sel(keypoints="tail")
    with pytest.raises(TracksValidationError, match="frames not in these tracks"):
        t.sel(frames=[99])
    with pytest.raises(TracksValidationError, match="out of range"):
        t.sel(individuals=[5])


def test_sel_by_mask_and_slice():
    t = make()
    mask = np.array([True, False] * 3)
    assert t.sel(frames=mask).frame_index.tolist() == [0, 2, 4]
    assert t.sel(frames=slice(1, 3)).frame_index.tolist() == [1, 2]


def test_unordered_frames_sort():
    t = make(frame_index=[5, 1, 3, 0, 2, 4])
    s = t.sorted_by_frame()
    assert s.frame_index.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(s.positions[0], t.positions[3])
    assert s.sorted_by_frame() is s


def test_equals_is_exact_and_nan_aware():
    t = make()
    pos = t.positions.copy()
    pos[0, 0, 0] = np.nan
    a, b = t.replace(positions=pos), t.replace(positions=pos.copy())
    assert a.equals(b)
    pos2 = pos.copy()
    pos2[1, 1, 1, 0] += 1e-3
    assert not a.equals(t.replace(positions=pos2))
    assert not a.equals(a.replace(fps=30))
    assert not a.equals(a.replace(individual_names=["x", "y"]))
    assert not a.equals("not tracks")


def test_repr_is_informative():
    r = repr(make(fps=25))
    assert "6 frames x 2 individuals x 3 keypoints x 2D" in r and "25 fps" in r


def test_3d_and_time():
    t = make(space=3, fps=50, frame_index=[0, 5, 10, 15, 20, 25])
    assert t.is_3d and t.n_space == 3
    np.testing.assert_allclose(t.time, [0, 0.1, 0.2, 0.3, 0.4, 0.5])
