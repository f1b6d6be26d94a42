"""Per-frame labels <-> bouts: runs split at frame gaps, validation messages, and the short-bout
merge (checked against a direct, slow statement of its rule)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_skelmae.analysis.bouts import (
    BOUT_COLUMNS,
    bouts_to_frames,
    check_bouts,
    frames_to_bouts,
    remove_short_bouts,
)
from napari_skelmae.analysis.labels import load_labels
from napari_skelmae.errors import SkelmaeError

from .conftest import data_path


# ------------------------------------------------------------------- frames <-> bouts
def test_runs_become_bouts_and_gaps_split_them():
    frames = np.array([10, 11, 12, 13, 20, 21, 22])  # a gap between 13 and 20
    codes = np.array([[0, 1], [0, 1], [1, 1], [1, -1], [1, -1], [1, 0], [-1, 0]])
    b = frames_to_bouts(codes, ["walk", "groom"], frames, ["a", "b"])
    assert list(b.columns) == BOUT_COLUMNS
    assert b.to_dict("records") == [
        {"individual": "a", "behaviour": "walk", "start_frame": 10, "stop_frame": 11},
        {"individual": "a", "behaviour": "groom", "start_frame": 12, "stop_frame": 13},
        {"individual": "a", "behaviour": "groom", "start_frame": 20, "stop_frame": 21},
        {"individual": "b", "behaviour": "groom", "start_frame": 10, "stop_frame": 12},
        {"individual": "b", "behaviour": "walk", "start_frame": 21, "stop_frame": 22},
    ]


def test_unsorted_rows_and_probability():
    frames = np.array([3, 1, 2, 0])
    codes = np.array([[1], [0], [1], [0]])
    prob = np.array([[0.9], [0.2], [0.7], [0.4]])
    b = frames_to_bouts(codes, ["x", "y"], frames, ["m"], probability=prob)
    assert b[["behaviour", "start_frame", "stop_frame"]].values.tolist() == [
        ["x", 0, 1], ["y", 2, 3]]
    np.testing.assert_allclose(b["probability"], [0.3, 0.8])


def test_round_trip_on_sparse_frames():
    rng = np.random.default_rng(0)
    frames = np.sort(rng.choice(5000, 800, replace=False))
    codes = rng.integers(-1, 3, (800, 2))
    codes = np.repeat(codes[::8], 8, axis=0)[:800]  # runs of several rows
    names = ["a", "b", "c"]
    b = frames_to_bouts(codes, names, frames, ["f0", "f1"])
    back, back_names = bouts_to_frames(b, frames, ["f0", "f1"], names)
    assert back_names == names
    np.testing.assert_array_equal(back, codes)


def test_bad_codes_are_refused():
    with pytest.raises(SkelmaeError, match="do not fit"):
        frames_to_bouts(np.zeros((3, 2), int), ["a"], np.arange(4), ["x", "y"])
    with pytest.raises(SkelmaeError, match="-1 or 0..0"):
        frames_to_bouts(np.array([[1]]), ["a"], np.arange(1), ["x"])


# --------------------------------------------------------------------------- checks
def _bouts(*rows):
    return pd.DataFrame(rows, columns=BOUT_COLUMNS)


@pytest.mark.parametrize("table, kwargs, message", [
    (pd.DataFrame({"individual": ["a"], "behaviour": ["x"]}), {}, "missing column"),
    (_bouts(("a", "x", 1.5, 3)), {}, "row 0: start_frame 1.5 is not a whole frame number"),
    (_bouts(("a", "x", 1, 3), ("a", "x", 9, 4)), {}, "row 1: stop_frame 4 is before"),
    (_bouts(("a", "x", 1, 3), ("z", "x", 5, 6)), {"individual_names": ["a"]},
     r"unknown individual\(s\) \['z'\]"),
    (_bouts(("a", "x", 1, 3), ("a", "x", 5, 600)), {"frame_range": (0, 99)},
     "row 1: frames 5-600 are outside the recording's frames 0-99"),
    (_bouts(("a", "x", 1, 5), ("a", "y", 5, 8)), {}, "overlapping bouts of a: x 1-5 and y 5-8"),
])
def test_check_bouts_names_the_problem(table, kwargs, message):
    with pytest.raises(SkelmaeError, match=message) as info:
        check_bouts(table, source="'labels.csv'", **kwargs)
    assert "'labels.csv'" in str(info.value)


def test_touching_bouts_and_allowed_overlap_pass():
    touching = _bouts(("a", "x", 1, 4), ("a", "y", 5, 8), ("b", "x", 1, 8))
    assert len(check_bouts(touching, ["a", "b"], (0, 10))) == 3
    overlapping = _bouts(("a", "x", 1, 5), ("a", "y", 3, 8))
    assert len(check_bouts(overlapping, allow_overlap=True)) == 2


def test_bouts_to_frames_names_and_unknown_behaviour():
    b = _bouts(("a", "walk", 0, 2), ("a", "rest", 5, 9))
    codes, names = bouts_to_frames(b, np.arange(8), ["a"])
    assert names == ["rest", "walk"]  # sorted by default
    assert codes[:, 0].tolist() == [1, 1, 1, -1, -1, 0, 0, 0]  # reaches past the rows: fine
    with pytest.raises(SkelmaeError, match=r"\['walk'\] are not among \['rest'\]"):
        bouts_to_frames(b, np.arange(8), ["a"], names=["rest"])


# ----------------------------------------------------------------------- short bouts
def _reference_merge(column: np.ndarray, min_frames: int) -> np.ndarray:
    """The rule stated directly: repeatedly take the shortest (leftmost on ties) labelled run
    under the limit that has a labelled neighbour, and give it the label of its longer
    labelled neighbour (the left one on ties). Slow; only for checking."""
    column = column.copy()
    while True:
        starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
        stops = np.r_[starts[1:], len(column)]
        lengths, labels = stops - starts, column[starts]
        candidates = []
        for k in range(len(starts)):
            neighbours = [j for j in (k - 1, k + 1)
                          if 0 <= j < len(starts) and labels[j] != -1]
            if labels[k] != -1 and lengths[k] < min_frames and neighbours:
                candidates.append((lengths[k], starts[k], k, neighbours))
        if not candidates:
            return column
        _, _, k, neighbours = min(candidates)
        j = neighbours[0] if len(neighbours) == 1 or lengths[neighbours[0]] >= lengths[
            neighbours[1]] else neighbours[1]
        column[starts[k]:stops[k]] = labels[j]


def test_short_bouts_examples():
    a = np.array([[0, 0, 0, 1, 0, 0, 0, 2, 2, 2, 2]]).T
    assert remove_short_bouts(a, np.arange(11), 2)[:, 0].tolist() == [0] * 7 + [2] * 4
    # unlabelled rows are never relabelled; a short run between them stays
    b = np.array([[0, 0, 0, -1, 1, -1, 0, 0]]).T
    assert remove_short_bouts(b, np.arange(8), 3)[:, 0].tolist() == b[:, 0].tolist()
    # a gap in the video frames is a boundary: the 1 right after it has no neighbour there
    c = np.array([[0, 0, 0, 1, 1, 1]]).T
    frames = np.array([0, 1, 2, 10, 11, 12])
    assert remove_short_bouts(c, frames, 3)[:, 0].tolist() == c[:, 0].tolist()
    # both runs are short: the leftmost goes first
    assert remove_short_bouts(c, np.arange(6), 4)[:, 0].tolist() == [1] * 6
    # neighbours of equal length: the left one wins
    d = np.array([[0, 0, 1, 2, 2]]).T
    assert remove_short_bouts(d, np.arange(5), 2)[:, 0].tolist() == [0, 0, 0, 2, 2]


@pytest.mark.parametrize("min_frames", [2, 3, 5, 9])
def test_short_bouts_match_the_rule_on_random_labels(min_frames):
    rng = np.random.default_rng(min_frames)
    for _ in range(40):
        n = int(rng.integers(1, 120))
        column = rng.integers(-1, 4, n)
        column = np.repeat(column, rng.integers(1, 6, n))[:n]  # runs of random lengths
        got = remove_short_bouts(column[:, None], np.arange(n), min_frames)[:, 0]
        np.testing.assert_array_equal(got, _reference_merge(column, min_frames))


def test_short_bouts_per_individual_and_unsorted_rows():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, (200, 2))
    frames = rng.permutation(200)
    got = remove_short_bouts(codes, frames, 4)
    order = np.argsort(frames)
    for i in range(2):
        np.testing.assert_array_equal(got[order, i], _reference_merge(codes[order, i], 4))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3"])
def test_short_bouts_bad_minimum(bad):
    with pytest.raises(SkelmaeError, match="min_bout_frames must be a positive integer"):
        remove_short_bouts(np.zeros((3, 1), int), np.arange(3), bad)


# --------------------------------------------------------------------------- real data
def test_real_boris_bouts_round_trip_through_frames():
    """BORIS bouts of a real annotation -> per-frame codes -> the same bouts."""
    bouts = load_labels(data_path("ethome_examples", "boris",
                                  "e3v813a-20210610T121558-122141_reencode.csv"))
    frames = np.arange(int(bouts["stop_frame"].max()) + 50)
    codes, names = bouts_to_frames(bouts, frames, ["adult"])
    assert names == ["interact"]
    assert int((codes >= 0).sum()) == int((bouts["stop_frame"] - bouts["start_frame"] + 1).sum())
    again = frames_to_bouts(codes, names, frames, ["adult"])
    # touching bouts of one behaviour are one run of frames: compare the frames they cover
    covered = np.zeros(len(frames), bool)
    for row in bouts.itertuples():
        covered[row.start_frame:row.stop_frame + 1] = True
    again_covered = np.zeros(len(frames), bool)
    for row in again.itertuples():
        again_covered[row.start_frame:row.stop_frame + 1] = True
    np.testing.assert_array_equal(covered, again_covered)
