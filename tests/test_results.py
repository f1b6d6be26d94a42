"""The per-frame results table on a real two-fly recording (sleap_analysis_example).

No trained model is needed to test the table's bookkeeping: the labels are honest rules on the
real positions (thorax speed terciles as "behaviours", heading quadrants as "clusters") and the
embeddings are the egocentric keypoint coordinates (keypoints minus thorax, flattened: 26
values per frame and fly), which have the right shape and NaN where a fly is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_skelmae.analysis.bouts import frames_to_bouts
from napari_skelmae.errors import SkelmaeError
from napari_skelmae.io import load_tracks
from napari_skelmae.results import (
    column_array,
    embedding_columns,
    results_from_table,
    results_table,
)

from .conftest import data_path

NAMES = ["still", "walk", "run"]


@pytest.fixture(scope="module")
def tracks():
    """Two flies, 3000 frames, fps from the video (25)."""
    return load_tracks(data_path("sleap_analysis_example", "predictions.slp"))


@pytest.fixture(scope="module")
def fragmented():
    """27 fragmented track ids of 2 flies over 1100 frames: 93 % of (frame, id) are empty."""
    return load_tracks(data_path("sleap_centered_pair", "centered_pair_predictions.slp"))


def speed_codes(tracks) -> np.ndarray:
    """Thorax speed terciles (0 still, 1 walk, 2 run) in row order, -1 where unknown."""
    thorax = tracks.positions[:, :, tracks.keypoint_names.index("thorax")]
    step = np.linalg.norm(np.diff(thorax, axis=0, prepend=thorax[:1]), axis=-1)
    step[0] = np.nan
    cuts = np.nanquantile(step, [1 / 3, 2 / 3])
    return np.where(np.isnan(step), -1, np.digitize(step, cuts)).astype(np.int64)


def heading_clusters(tracks) -> np.ndarray:
    k = tracks.keypoint_names
    axis = tracks.positions[:, :, k.index("head")] - tracks.positions[:, :, k.index("thorax")]
    angle = np.arctan2(axis[..., 1], axis[..., 0])
    return np.where(np.isnan(angle), -1, ((angle + np.pi) // (np.pi / 2)) % 4).astype(np.int64)


def egocentric(tracks) -> np.ndarray:
    thorax = tracks.positions[:, :, [tracks.keypoint_names.index("thorax")]]
    return (tracks.positions - thorax).reshape(tracks.n_frames, tracks.n_individuals, -1)


def soft_probabilities(tracks) -> np.ndarray:
    """A per-class probability from the speed (softmax of distances to tercile centres)."""
    codes = speed_codes(tracks)
    logits = -np.abs(np.arange(3)[None, None, :] - codes[..., None]).astype(np.float32)
    p = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    p[codes < 0] = np.nan
    return p.astype(np.float32)


def test_one_row_per_tracked_animal_and_frame(fragmented):
    tracks = fragmented
    codes, clusters, emb = speed_codes(tracks), heading_clusters(tracks), egocentric(tracks)
    table = results_table(tracks, embeddings=emb, clusters=clusters, behaviours=codes,
                          behaviour_names=NAMES)
    present = ~tracks.missing.all(axis=2)
    assert len(table) == present.sum() < 0.1 * present.size  # absent ids get no row
    assert list(table.columns[:6]) == ["frame", "time", "individual", "cluster", "behaviour",
                                       "probability"]
    assert list(table.columns[6:]) == embedding_columns(emb.shape[2])
    assert table["frame"].dtype == np.int64 and table["cluster"].dtype == np.int64
    assert list(table["individual"].cat.categories) == list(tracks.individual_names)
    assert list(table["behaviour"].cat.categories) == NAMES
    # sorted by frame, then individual in track order
    key = table["frame"].to_numpy() * 100 + table["individual"].cat.codes.to_numpy()
    assert np.all(np.diff(key) > 0)
    np.testing.assert_array_equal(table["time"], table["frame"] / tracks.fps)

    # every row holds the values of its own (frame, individual), checked independently
    rng = np.random.default_rng(0)
    for k in rng.choice(len(table), 50, replace=False):
        row = table.iloc[k]
        r = int(np.flatnonzero(tracks.frame_index == row["frame"])[0])
        i = list(tracks.individual_names).index(row["individual"])
        assert row["cluster"] == clusters[r, i]
        assert (row["behaviour"] if pd.notna(row["behaviour"]) else -1) == (
            NAMES[codes[r, i]] if codes[r, i] >= 0 else -1)
        np.testing.assert_array_equal(row[embedding_columns(emb.shape[2])].to_numpy(np.float32),
                                      emb[r, i])


def test_arrays_come_back_exactly(tracks):
    codes, clusters, emb = speed_codes(tracks), heading_clusters(tracks), egocentric(tracks)
    probs = soft_probabilities(tracks)
    table = results_table(tracks, embeddings=emb, clusters=clusters, behaviours=codes,
                          behaviour_names=NAMES, probabilities=probs,
                          cluster_names=["W", "S", "E", "N"])
    back = results_from_table(table, tracks)
    np.testing.assert_array_equal(back.behaviours, codes)
    np.testing.assert_array_equal(back.clusters, clusters)
    np.testing.assert_array_equal(back.embedding_values, emb)  # NaN where absent, both sides
    np.testing.assert_array_equal(back.probabilities, probs)
    assert back.behaviour_names == NAMES and back.cluster_names == ["W", "S", "E", "N"]
    assert back.embedding_values.dtype == np.float32
    pd.testing.assert_frame_equal(
        back.bouts(), frames_to_bouts(codes, NAMES, tracks.frame_index, tracks.individual_names,
                                      back.probability))


def test_probability_columns_and_default_behaviour(tracks):
    probs = soft_probabilities(tracks)
    table = results_table(tracks, probabilities=probs, behaviour_names=NAMES)
    assert [c for c in table.columns if c.startswith("p_")] == ["p_still", "p_walk", "p_run"]
    labelled = table["behaviour"].notna()
    assert labelled.any()
    # without codes the behaviour is the most probable class, its probability that class's
    expected = table[["p_still", "p_walk", "p_run"]].to_numpy().argmax(axis=1)
    np.testing.assert_array_equal(table["behaviour"].cat.codes[labelled], expected[labelled])
    np.testing.assert_array_equal(table.loc[labelled, "probability"],
                                  table[["p_still", "p_walk", "p_run"]].max(axis=1)[labelled])
    assert table.loc[~labelled, "probability"].isna().all()


def test_smoothed_behaviour_keeps_its_own_probability(tracks):
    """When codes are given (e.g. after removing short bouts), `probability` is that of the
    row's behaviour, not of a class it no longer shows."""
    probs = soft_probabilities(tracks)
    codes = speed_codes(tracks)
    relabelled = np.where(codes == 2, 0, codes)
    table = results_table(tracks, behaviours=relabelled, probabilities=probs,
                          behaviour_names=NAMES)
    back = results_from_table(table, tracks)
    r, i = np.nonzero(codes == 2)
    np.testing.assert_array_equal(back.probability[r, i], probs[r, i, 0])


def test_labels_on_absent_rows_are_kept(fragmented):
    tracks = fragmented
    absent = np.argwhere(tracks.missing.all(axis=2))
    r, i = absent[0]
    codes = np.full((tracks.n_frames, tracks.n_individuals), -1)
    codes[r, i] = 1
    table = results_table(tracks, behaviours=codes, behaviour_names=NAMES)
    assert len(table) == (~tracks.missing.all(axis=2)).sum() + 1
    np.testing.assert_array_equal(results_from_table(table, tracks).behaviours, codes)
    everything = results_table(tracks, behaviours=codes, behaviour_names=NAMES,
                               keep_absent=True)
    assert len(everything) == tracks.n_frames * tracks.n_individuals


def test_unsorted_sparse_frames_and_unknown_fps(tracks):
    rng = np.random.default_rng(1)
    rows = rng.choice(tracks.n_frames, 400, replace=False)  # sparse and shuffled
    sub = tracks.replace(positions=tracks.positions[rows], confidence=tracks.confidence[rows],
                         frame_index=tracks.frame_index[rows], fps=None)
    codes = speed_codes(tracks)[rows]
    table = results_table(sub, behaviours=codes, behaviour_names=NAMES)
    assert table["frame"].is_monotonic_increasing
    assert table["time"].isna().all()
    np.testing.assert_array_equal(results_from_table(table, sub).behaviours, codes)
    names = column_array(table, sub, "behaviour")
    assert names.dtype == object
    expected = np.where(codes >= 0, np.array(NAMES, dtype=object)[codes], None)
    assert (names == expected).all()


def test_model_id_travels_from_embeddings(tracks):
    from napari_skelmae.inference import Embeddings

    emb = Embeddings(egocentric(tracks), model_id="0123456789abcdef")
    table = results_table(tracks, embeddings=emb, method="mamp")
    assert table.attrs["skelmae"]["model_id"] == "0123456789abcdef"
    assert table.attrs["skelmae"]["method"] == "mamp"
    assert results_from_table(table, tracks).embeddings.model_id == "0123456789abcdef"


@pytest.mark.parametrize("kwargs, message", [
    ({"behaviours": "codes"}, "behaviour_names"),
    ({"behaviours": "codes", "behaviour_names": ["a", "b"]}, "only 2 names"),
    ({"behaviours": "codes", "behaviour_names": ["a", "a", "b"]}, "repeat"),
    ({"clusters": "short"}, "shape"),
    ({"probabilities": "probs"}, "behaviour_names"),
    ({"probabilities": "probs_bad", "behaviour_names": NAMES}, r"\[0, 1\]"),
    ({"embeddings": "emb_2d"}, "embeddings have shape"),
])
def test_bad_input_is_a_clear_error(tracks, kwargs, message):
    values = {"codes": speed_codes(tracks), "short": speed_codes(tracks)[:-1],
              "probs": soft_probabilities(tracks), "probs_bad": soft_probabilities(tracks) * 2,
              "emb_2d": egocentric(tracks)[:, :, 0]}
    kwargs = {k: values.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(SkelmaeError, match=message):
        results_table(tracks, **kwargs)


def test_table_that_does_not_fit_the_tracks(tracks):
    table = results_table(tracks, behaviours=speed_codes(tracks), behaviour_names=NAMES)
    bad = table.copy()
    bad.loc[0, "frame"] = 10**6
    with pytest.raises(SkelmaeError, match="frames the tracks do not"):
        results_from_table(bad, tracks)
    other = tracks.replace(individual_names=["a", "b"])
    with pytest.raises(SkelmaeError, match="individuals the tracks do not"):
        results_from_table(table, other)
    with pytest.raises(SkelmaeError, match="two rows"):
        results_from_table(pd.concat([table, table.iloc[:1]]), tracks)
