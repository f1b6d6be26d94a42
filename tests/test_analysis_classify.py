"""Behaviour classifiers on frozen embeddings of a real recording.

The labelled set, honestly: no human behaviour labels exist for any shared recording with
tracks. The courtship recording sleap_analysis_example (two flies, 3000 frames, 25 fps) is
labelled by a RULE on its keypoints, standing in for an annotator: "wing extended" when a
wing points more than 45 degrees away from the body axis (thorax -> abdomen), "wings folded"
below 20 degrees, nothing in between, and only clear stretches of at least 5 frames. A fly
extends one wing to sing during courtship, so this is a real behaviour of this recording,
but the test shows that the embeddings carry the posture that defines it and that training,
grouped cross-validation and prediction work, not that the classifier matches a human.
Chance is computed on the same held-out frames, and shuffled labels must not do as well.

SimBA's CRIM13 sample supplies its classifier outputs (``*_prediction`` columns, again not
human labels) as a real case of too few bouts (approach and chase: one bout each).

Model: a tiny MAMP pretrained for 60 steps (seconds)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from napari_skelmae import load_tracks
from napari_skelmae.analysis.bouts import bouts_to_frames, frames_to_bouts
from napari_skelmae.analysis.classify import (
    fine_tune_classifier,
    load_classifier,
    train_classifier,
)
from napari_skelmae.analysis.labels import load_labels
from napari_skelmae.errors import SkelmaeError, SkelmaeWarning
from napari_skelmae.inference import Embeddings
from napari_skelmae.training import pretrain

from .conftest import data_path
from .shared_fixtures import one_thread  # noqa: F401

TINY = dict(dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)
WINDOW = dict(window_s=16 / 30, stride_s=4 / 30)
NAMES = ["folded", "extended"]


def wing_labels(tracks) -> np.ndarray:
    """The rule of the module docstring: codes (frames, individuals) into NAMES."""
    k = {n: i for i, n in enumerate(tracks.keypoint_names)}
    p = tracks.positions.astype(np.float64)
    rear = p[:, :, k["abdomen"]] - p[:, :, k["thorax"]]

    def angle(wing):
        v = p[:, :, k[wing]] - p[:, :, k["thorax"]]
        with np.errstate(invalid="ignore"):
            cos = (rear * v).sum(-1) / np.linalg.norm(rear, axis=-1) / np.linalg.norm(v, axis=-1)
        return np.degrees(np.arccos(np.clip(cos, -1, 1)))

    spread = np.fmax(angle("wingL"), angle("wingR"))  # NaN only when both are unknown
    codes = np.full(spread.shape, -1, np.int64)
    codes[spread > 45] = 1
    codes[spread < 20] = 0
    bouts = frames_to_bouts(codes, NAMES, tracks.frame_index, tracks.individual_names)
    clear = bouts[bouts["stop_frame"] - bouts["start_frame"] + 1 >= 5]
    return bouts_to_frames(clear, tracks.frame_index, tracks.individual_names, NAMES)[0]


@pytest.fixture(scope="module")
def flies_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)
        tracks = load_tracks(data_path("sleap_analysis_example", "predictions.slp"))
    model = pretrain(tracks, "mamp", max_steps=60, window=WINDOW, batch_size=16,
                     precision="float32", **TINY)
    return tracks, model


@pytest.fixture(scope="module")
def flies(flies_model):
    tracks, model = flies_model
    return tracks, model.embed(tracks), wing_labels(tracks)


@pytest.fixture(scope="module")
def linear(flies):
    tracks, emb, codes = flies
    return train_classifier(emb, codes, NAMES, tracks=tracks, cv=5)


def _bout_table(codes, tracks):
    return frames_to_bouts(codes, NAMES, tracks.frame_index, tracks.individual_names)


def _scores(truth, guess):
    """Balanced accuracy and macro F1 over NAMES of ``guess`` (N,) or of many guesses
    (draws, N) at once."""
    guess = np.atleast_2d(guess)
    recall, f1 = [], []
    for c in range(len(NAMES)):
        hit = ((guess == c) & (truth == c)).sum(axis=1)
        predicted, actual = (guess == c).sum(axis=1), (truth == c).sum()
        recall.append(hit / actual)
        f1.append(np.where(predicted + actual > 0, 2 * hit / np.maximum(predicted + actual, 1),
                           0.0))
    balanced, macro = np.mean(recall, axis=0), np.mean(f1, axis=0)
    return (balanced[0], macro[0]) if len(balanced) == 1 else (balanced, macro)


def _few_bouts(flies):
    """Training labels: 3 bouts of each behaviour, spread over the recording; the held-out
    frames: every other labelled frame where the fly is embedded."""
    tracks, emb, codes = flies
    bouts = _bout_table(codes, tracks)
    chosen = []
    for name in NAMES:
        rows = bouts.index[bouts["behaviour"] == name]
        chosen += list(rows[np.linspace(0, len(rows) - 1, 3).round().astype(int)])
    train_codes = bouts_to_frames(bouts.loc[chosen], tracks.frame_index,
                                  tracks.individual_names, NAMES)[0]
    held_out = (codes >= 0) & (train_codes < 0) & np.isfinite(np.asarray(emb)).all(axis=2)
    return train_codes, held_out


def _chance(truth, train_codes):
    """Chance on the held-out frames: the best of the majority class of the training frames
    and of 1000 random guessers with the training frequencies."""
    train_y = train_codes[train_codes >= 0]
    majority = np.full(len(truth), np.bincount(train_y).argmax())
    share = np.bincount(train_y, minlength=2) / len(train_y)
    guesses = np.random.default_rng(0).choice(2, (1000, len(truth)), p=share)
    random_balanced, random_f1 = _scores(truth, guesses)
    return (max(_scores(truth, majority)[0], random_balanced.max()),
            max(_scores(truth, majority)[1], random_f1.max()))


# ------------------------------------------------------------------- above chance
def test_a_few_bouts_predict_held_out_bouts_above_chance(flies):
    """Train on 3 bouts of each behaviour; every other labelled bout is held out."""
    tracks, emb, codes = flies
    train_codes, held_out = _few_bouts(flies)
    assert held_out.sum() > 3000 and (train_codes >= 0).sum() < 600

    clf = train_classifier(emb, train_codes, NAMES, tracks=tracks, cv=None)
    predicted, probability = clf.predict(emb)
    truth = codes[held_out]
    balanced, macro_f1 = _scores(truth, predicted[held_out])
    chance_balanced, chance_f1 = _chance(truth, train_codes)
    assert balanced > chance_balanced, (balanced, chance_balanced)
    assert macro_f1 > chance_f1, (macro_f1, chance_f1)

    # shuffled labels (the same training frames, labels permuted): the embeddings no longer
    # carry the label, so these classifiers must all do worse than the real one
    shuffled = []
    for seed in range(5):
        permuted = train_codes.copy()
        where = permuted >= 0
        permuted[where] = np.random.default_rng(seed).permutation(permuted[where])
        guess = train_classifier(emb, permuted, NAMES, cv=None).predict(emb)[0]
        shuffled.append(_scores(truth, guess[held_out])[0])
    assert balanced > max(shuffled), (balanced, shuffled)
    # probabilities: over the behaviours, NaN only where the fly is absent
    absent = ~np.isfinite(np.asarray(emb)).all(axis=2)
    assert np.isnan(probability[absent]).all() and (predicted[absent] == -1).all()
    np.testing.assert_allclose(probability[~absent].sum(axis=-1), 1, atol=1e-5)


def test_grouped_cross_validation(flies, linear):
    tracks, emb, codes = flies
    report, summary = linear.cv_report, linear.cv_summary
    assert list(report.columns) == ["behaviour", "precision", "recall", "f1", "support",
                                    "bouts", "chance_f1"]
    assert report["behaviour"].tolist() == NAMES
    labelled = (codes >= 0) & np.isfinite(np.asarray(emb)).all(axis=2)
    assert report["support"].sum() == labelled.sum() == summary["n_frames"]
    assert summary["n_splits"] == 5
    # folds hold whole bouts: every bout's frames are in one fold
    folds = linear.cv_folds
    for row in _bout_table(codes, tracks).itertuples():
        i = tracks.individual_names.index(row.individual)
        rows = np.flatnonzero((tracks.frame_index >= row.start_frame)
                              & (tracks.frame_index <= row.stop_frame))
        in_bout = folds[rows, i][labelled[rows, i]]
        assert len(set(in_bout.tolist())) <= 1
    # the report is what the out-of-fold predictions score
    balanced, macro_f1 = _scores(codes[labelled], linear.cv_predictions[labelled])
    assert np.isclose(summary["macro_f1"], macro_f1)
    assert np.isclose(summary["balanced_accuracy"], balanced)
    assert summary["macro_f1"] > summary["chance_macro_f1"]
    # labels permuted between bouts (the bout structure kept): no better than the real ones
    bouts = _bout_table(codes, tracks)
    for seed in range(3):
        permuted = bouts.copy()
        permuted["behaviour"] = np.random.default_rng(seed).permutation(bouts["behaviour"])
        # neighbouring bouts that now share a behaviour merge; that is fine for the control
        shuffled_codes = bouts_to_frames(permuted, tracks.frame_index,
                                         tracks.individual_names, NAMES)[0]
        control = train_classifier(emb, shuffled_codes, NAMES, tracks=tracks, cv=5)
        assert control.cv_summary["macro_f1"] < summary["macro_f1"]


def test_mlp_head_and_files(flies, linear, tmp_path):
    tracks, emb, codes = flies
    mlp = train_classifier(emb, codes, NAMES, tracks=tracks, kind="mlp", cv=3, epochs=30)
    assert mlp.cv_summary["macro_f1"] > mlp.cv_summary["chance_macro_f1"]
    for clf in (linear, mlp):
        loaded = load_classifier(clf.save(tmp_path / f"{clf.kind}.classifier"))
        assert loaded.kind == clf.kind and loaded.names == NAMES
        assert loaded.model_id == emb.model_id
        a_codes, a_prob = clf.predict(emb)
        b_codes, b_prob = loaded.predict(emb)
        np.testing.assert_array_equal(a_codes, b_codes)
        np.testing.assert_array_equal(a_prob, b_prob)
        pd.testing.assert_frame_equal(loaded.cv_report, clf.cv_report, check_dtype=False)
    again = train_classifier(emb, codes, NAMES, tracks=tracks, kind="mlp", cv=None, epochs=30)
    np.testing.assert_array_equal(again.predict(emb)[1], mlp.predict(emb)[1])  # seeded


def test_fine_tuning_the_encoder_on_a_few_bouts(flies, flies_model, tmp_path):
    """The encoder (a copy) and a linear head trained on the same 3 + 3 bouts: held-out
    frames above chance; the original model is untouched and its embeddings are refused."""
    tracks, emb, codes = flies
    train_codes, held_out = _few_bouts(flies)
    model = flies_model[1]
    before = model.model_id
    tuned, clf = fine_tune_classifier(model, tracks, train_codes, NAMES, steps=100,
                                      batch_size=16)
    assert model.model_id == before == emb.model_id and tuned.model_id != before
    assert clf.model_id == tuned.model_id and clf.options["fine_tuned"]
    history = tuned.history["fine_tuned"]
    assert history["final_loss"] < history["first_loss"]
    tuned_emb = tuned.embed(tracks)
    predicted, _ = clf.predict(tuned_emb)
    truth = codes[held_out]
    balanced, macro_f1 = _scores(truth, predicted[held_out])
    chance_balanced, chance_f1 = _chance(truth, train_codes)
    assert balanced > chance_balanced and macro_f1 > chance_f1, (balanced, macro_f1)
    with pytest.raises(SkelmaeError, match="come from model"):
        clf.predict(emb)
    loaded = load_classifier(clf.save(tmp_path / "tuned.classifier"))
    np.testing.assert_array_equal(loaded.predict(tuned_emb)[1], clf.predict(tuned_emb)[1])


def test_bouts_table_labels_and_predicted_bouts(flies, linear):
    tracks, emb, codes = flies
    bouts = _bout_table(codes, tracks)
    clf = train_classifier(emb, bouts, tracks=tracks, cv=None)
    assert clf.names == sorted(NAMES)  # a bouts table: behaviours sorted by default
    predicted = linear.predict_bouts(emb, tracks)
    assert set(predicted["behaviour"]) <= set(NAMES)
    # two behaviours: the predicted one has probability >= 0.5 on every frame of its bout
    assert ((predicted["probability"] >= 0.5) & (predicted["probability"] <= 1)).all()
    codes_pred = linear.predict(emb)[0]
    again = bouts_to_frames(predicted, tracks.frame_index, tracks.individual_names, NAMES)[0]
    np.testing.assert_array_equal(again, codes_pred)
    # merged short bouts carry the probability of the behaviour they now show (maybe < 0.5)
    smooth = linear.predict_bouts(emb, tracks, min_bout_frames=5)
    assert len(smooth) < len(predicted)
    assert ((smooth["probability"] > 0) & (smooth["probability"] <= 1)).all()
    with pytest.raises(SkelmaeError, match="need tracks="):
        train_classifier(emb, bouts)


# ------------------------------------------------------------------------ bad input
def test_simba_single_bout_behaviours_are_flagged():
    """SimBA's classifiers found 'approach' and 'chase' once each in these clips: they are
    learnt, but their cross-validated scores are NaN and a warning says why."""
    names = ["Tvideo_8_trim.csv", "Tvideo_25_trim.csv", "Tvideo_80_trim.csv"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkelmaeWarning)
        # the files carry no frame rate; 25 fps is assumed, for the model's windows only
        recordings = [load_tracks(data_path("simba_crim13_sample", n), fps=25) for n in names]
    labels = [load_labels(t.source_path, tracks=t, individual="Animal_1") for t in recordings]
    model = pretrain(recordings, "mamp", max_steps=20, window=WINDOW, batch_size=16,
                     precision="float32", val_fraction=0, **TINY)
    embeddings = [model.embed(t) for t in recordings]
    with pytest.warns(SkelmaeWarning, match=r"\['approach', 'chase'\] have a single labelled "
                      "bout"):
        clf = train_classifier(embeddings, labels, tracks=recordings, cv=5)
    report = clf.cv_report.set_index("behaviour")
    assert report.loc[["approach", "chase"], "f1"].isna().all()
    assert report.loc["sniff", "bouts"] == 3 and np.isfinite(report.loc["sniff", "f1"])
    assert clf.cv_summary["n_splits"] == 3
    assert set(clf.classes.tolist()) == {0, 1, 2}  # all three learnt


def test_refusals(flies, linear):
    tracks, emb, codes = flies
    foreign = Embeddings(np.asarray(emb), model_id="ffffffffffffffff")
    with pytest.raises(SkelmaeError, match="come from model ffffffffffffffff"):
        linear.predict(foreign)
    with pytest.raises(SkelmaeError, match="32-dimensional"):
        linear.predict(np.asarray(emb)[..., :16])
    with pytest.warns(SkelmaeWarning, match="cannot check"):
        linear.predict(np.asarray(emb))
    only_one = np.where(codes == 1, -1, codes)
    with pytest.raises(SkelmaeError, match="at least 2 behaviours"):
        train_classifier(emb, only_one, NAMES)
    with pytest.warns(SkelmaeWarning, match=r"\['groom'\] have no labelled frame"):
        train_classifier(emb, codes, NAMES + ["groom"], cv=None)
    with pytest.raises(SkelmaeError, match="need names="):
        train_classifier(emb, codes)
    with pytest.raises(SkelmaeError, match="do not fit"):
        train_classifier(emb, codes[:10], NAMES)
    with pytest.raises(SkelmaeError, match="unknown option"):
        train_classifier(emb, codes, NAMES, hidden=3)
    with pytest.raises(SkelmaeError, match="unknown classifier kind"):
        train_classifier(emb, codes, NAMES, kind="forest")
    with pytest.raises(SkelmaeError, match="cv must be"):
        train_classifier(emb, codes, NAMES, cv=1)
