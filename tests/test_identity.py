"""merge_fragmented_tracks: synthetic animals with a known truth, and real SLEAP tracks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_skelmae.errors import SkelmaeError
from napari_skelmae.identity import merge_fragmented_tracks
from napari_skelmae.io.sleap import read_slp
from napari_skelmae.tracks import PoseTracks

from .conftest import data_path


def _fragment(truth: np.ndarray, cuts: list[list[int]], gap: int, rng) -> tuple[PoseTracks, list]:
    """Cut each animal of ``truth`` (frames, animals, kp, 2) at ``cuts`` with ``gap`` empty
    frames before each cut, and shuffle the ids. Returns the tracks and, per id, its animal."""
    n_frames = truth.shape[0]
    pieces, owner = [], []
    for animal, animal_cuts in enumerate(cuts):
        bounds = [0, *animal_cuts, n_frames]
        for start, end in zip(bounds[:-1], bounds[1:]):
            piece = np.full(truth.shape[:1] + truth.shape[2:], np.nan, np.float32)
            stop = end - gap if end < n_frames else end
            piece[start:stop] = truth[start:stop, animal]
            pieces.append(piece)
            owner.append(animal)
    perm = rng.permutation(len(pieces))
    tracks = PoseTracks(
        np.stack([pieces[i] for i in perm], axis=1),
        confidence=np.ones((n_frames, len(perm), truth.shape[2]), np.float32),
        individual_names=[f"id{i}" for i in range(len(perm))],
    )
    return tracks, [owner[i] for i in perm]


def _expected(truth, cuts, gap):
    """The truth with the gap frames before each cut blanked, as the fragments hold it."""
    out = truth.astype(np.float32).copy()
    for animal, animal_cuts in enumerate(cuts):
        for c in animal_cuts:
            out[c - gap:c, animal] = np.nan
    return out


def _two_circling_animals(n_frames=400):
    t = np.arange(n_frames)
    offsets = np.array([[0, 0], [4, 0], [0, 4]], float)  # 3 keypoints around the centre
    a = np.stack([100 + 40 * np.cos(t / 30), 100 + 40 * np.sin(t / 30)], -1)
    b = np.stack([300 + 40 * np.cos(t / 25), 120 + 40 * np.sin(t / 25)], -1)
    return np.stack([a[:, None] + offsets, b[:, None] + offsets], axis=1)  # (frames, 2, 3, 2)


def _match_truth(merged: PoseTracks, expected: np.ndarray) -> list[int]:
    """Which animal each merged individual is; fails unless each equals one animal exactly."""
    found = []
    for k in range(merged.n_individuals):
        same = [a for a in range(expected.shape[1])
                if np.array_equal(merged.positions[:, k], expected[:, a], equal_nan=True)]
        assert len(same) == 1, f"individual {merged.individual_names[k]} mixes animals"
        found.append(same[0])
    return found


def test_synthetic_fragments_with_shuffled_ids_are_rejoined_exactly():
    rng = np.random.default_rng(1)
    truth = _two_circling_animals()
    cuts = [[40, 90, 150, 260, 330], [70, 90, 200, 210, 300, 390]]  # 90: both restart at once
    tracks, owner = _fragment(truth, cuts, gap=3, rng=rng)
    assert tracks.n_individuals == 13

    merged = merge_fragmented_tracks(tracks)
    assert merged.n_individuals == 2
    animals = _match_truth(merged, _expected(truth, cuts, 3))
    assert sorted(animals) == [0, 1]
    for name, animal in zip(merged.individual_names, animals):
        members = merged.metadata["merged_from"][name]
        assert name == members[0]
        assert sorted(members) == sorted(n for n, o in zip(tracks.individual_names, owner)
                                         if o == animal)
    assert int((~merged.missing).sum()) == int((~tracks.missing).sum())
    np.testing.assert_array_equal(merged.frame_index, tracks.frame_index)
    assert np.isfinite(merged.confidence).sum() == np.isfinite(tracks.confidence).sum()


def test_simultaneous_restarts_are_assigned_jointly():
    """Both animals restart on frame 10. Taken one by one, A's new fragment would grab B's
    individual (4 px from B's last point versus 6 px from A's); jointly A->A, B->B is cheaper."""
    n = 20
    truth = np.full((n, 2, 1, 2), np.nan)
    truth[:10, 0, 0] = [0, 0]
    truth[10:, 0, 0] = [6, 0]
    truth[:10, 1, 0] = [10, 0]
    truth[10:, 1, 0] = [14, 0]
    ids = np.full((n, 4, 1, 2), np.nan)
    ids[:10, 0], ids[10:, 1] = truth[:10, 1], truth[10:, 0]  # id0 = B early, id1 = A late
    ids[:10, 2], ids[10:, 3] = truth[:10, 0], truth[10:, 1]  # id2 = A early, id3 = B late
    merged = merge_fragmented_tracks(PoseTracks(ids, individual_names=["b0", "a1", "a0", "b1"]))
    assert merged.metadata["merged_from"] == {"b0": ["b0", "b1"], "a0": ["a0", "a1"]}


def test_speed_not_distance_decides():
    """A fragment joins the individual it is farther from, when the nearer one would have to
    move faster (distance per frame elapsed)."""
    pos = np.full((200, 3, 1, 2), np.nan)
    pos[0:50, 0, 0] = [0, 0]  # 'old' ends at frame 49, 50 px away: 50 / 101 px per frame
    pos[0:149, 1, 0] = [30, 0]  # 'recent' ends at frame 148, 20 px away: 20 / 2 px per frame
    pos[150:, 2, 0] = [50, 0]
    merged = merge_fragmented_tracks(PoseTracks(pos, individual_names=["old", "recent", "new"]))
    assert merged.metadata["merged_from"] == {"old": ["old", "new"], "recent": ["recent"]}


def test_never_joins_overlapping_ids_and_explains_when_impossible():
    pos = np.full((30, 3, 1, 2), np.nan)
    pos[0:20, 0] = 1.0
    pos[10:25, 1] = 2.0
    pos[21:30, 2] = 3.0  # could follow id a, never id b
    tracks = PoseTracks(pos, individual_names=["a", "b", "c"])
    merged = merge_fragmented_tracks(tracks)
    assert merged.metadata["merged_from"] == {"a": ["a", "c"], "b": ["b"]}
    with pytest.raises(SkelmaeError, match=r"2 track ids are present at the same time in frame 10"):
        merge_fragmented_tracks(tracks, max_individuals=1)
    with pytest.raises(SkelmaeError, match="at least 1"):
        merge_fragmented_tracks(tracks, max_individuals=0)

    # Interleaved ids are never present together, yet their time spans overlap.
    inter = np.full((10, 2, 1, 2), np.nan)
    inter[[0, 2, 4, 6], 0] = 1.0
    inter[[3, 5], 1] = 2.0
    interleaved = PoseTracks(inter, individual_names=["p", "q"])
    assert merge_fragmented_tracks(interleaved).n_individuals == 2
    with pytest.raises(SkelmaeError, match="overlap in time"):
        merge_fragmented_tracks(interleaved, max_individuals=1)


def test_unsorted_rows_empty_ids_and_repeated_merges():
    rng = np.random.default_rng(5)
    truth = _two_circling_animals(120)
    cuts = [[30, 80], [50]]
    tracks, _ = _fragment(truth, cuts, gap=2, rng=rng)
    empty = np.full((tracks.n_frames, 1, 3, 2), np.nan)
    tracks = tracks.replace(
        positions=np.concatenate([tracks.positions, empty], axis=1),
        confidence=None,
        individual_names=[*tracks.individual_names, "ghost"],
    )
    shuffled = tracks.sel(frames=rng.permutation(tracks.n_frames))
    merged = merge_fragmented_tracks(shuffled)
    assert merged.metadata["merged_empty_ids"] == ["ghost"]
    _match_truth(merged.sel(frames=np.arange(120)), _expected(truth, cuts, 2))
    np.testing.assert_array_equal(merged.frame_index, shuffled.frame_index)
    again = merge_fragmented_tracks(merged)  # merging twice keeps the full record
    assert again.metadata["merged_from"] == merged.metadata["merged_from"]

    with pytest.raises(SkelmaeError, match="no tracked points"):
        merge_fragmented_tracks(PoseTracks(np.full((5, 2, 3, 2), np.nan)))


def test_real_flies_cut_into_fragments_are_rejoined():
    """sleap_analysis_example: two courting flies (they come within ~50 px), each cut at 12
    random frames with a 2-frame gap and the 26 ids shuffled, come back exactly."""
    real = read_slp(data_path("sleap_analysis_example", "predictions.slp"))
    rng = np.random.default_rng(0)
    cuts = [sorted(rng.choice(np.arange(50, real.n_frames - 50), 12, replace=False).tolist())
            for _ in range(2)]
    tracks, _ = _fragment(real.positions, cuts, gap=2, rng=rng)
    merged = merge_fragmented_tracks(tracks, max_individuals=2)
    expected = _expected(real.positions, cuts, 2)
    assert sorted(_match_truth(merged, expected)) == [0, 1]

    # Continuity: the centroid jump across each join is small next to the flies' separation.
    centroid = _centroids(merged.positions)
    separation = np.nanmedian(np.linalg.norm(centroid[:, 0] - centroid[:, 1], axis=-1))
    jumps = _join_jumps(merged, tracks)
    assert len(jumps) == 24
    assert np.median(jumps) < 0.1 * separation


def _centroids(positions):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows where an individual is absent
        return np.nanmean(positions, axis=2)


def _join_jumps(merged: PoseTracks, original: PoseTracks) -> list[float]:
    """Centroid distance, in the merged individual, from the last frame before each joined
    fragment to the fragment's first frame (rows sorted by frame)."""
    centroid = _centroids(merged.positions)
    held = ~np.isnan(centroid[..., 0])
    present = ~original.missing.all(axis=2)
    jumps = []
    for k, ids in enumerate(merged.metadata["merged_from"].values()):
        for name in ids[1:]:
            start = int(np.argmax(present[:, original.individual_names.index(name)]))
            before = np.flatnonzero(held[:start, k])[-1]
            jumps.append(float(np.linalg.norm(centroid[start, k] - centroid[before, k])))
    return jumps


def test_centered_pair_fragments():
    """sleap_centered_pair has 27 ids: ids '1' and '2' follow the two flies through all 1100
    frames, and 25 short ids are extra low-score detections (up to 3 at once, frame 1099).
    So the ids join into 5 individuals, not 2, and asking for 2 must fail clearly."""
    tracks = read_slp(data_path("sleap_centered_pair", "centered_pair_predictions.slp"))
    present = ~tracks.missing.all(axis=2)
    assert present[:, :2].all() and present.sum(axis=1).max() == 5

    merged = merge_fragmented_tracks(tracks)
    assert merged.n_individuals == 5
    assert int((~merged.missing).sum()) == int((~tracks.missing).sum())  # no point lost
    groups = merged.metadata["merged_from"]
    assert groups["1"] == ["1"] and groups["2"] == ["2"]
    assert sorted(n for ids in groups.values() for n in ids) == sorted(tracks.individual_names)
    for k, ids in enumerate(groups.values()):
        cols = [tracks.individual_names.index(n) for n in ids]
        assert (present[:, cols].sum(axis=1) <= 1).all()  # one fragment per frame at most
        expected = np.full(merged.positions.shape[:1] + merged.positions.shape[2:], np.nan)
        for c in cols:
            expected[present[:, c]] = tracks.positions[present[:, c], c]
        np.testing.assert_array_equal(merged.positions[:, k], expected.astype(np.float32))
    with pytest.raises(SkelmaeError, match="5 track ids are present at the same time in frame 1099"
                       r".*'1', '2', '25', '26', '27'"):
        merge_fragmented_tracks(tracks, max_individuals=2)
