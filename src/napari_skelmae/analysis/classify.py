"""Behaviours from a few labels: a linear probe or a small MLP on frozen embeddings.

``train_classifier(embeddings, labels, names)`` fits on the labelled rows (label >= 0 and an
embedding), after cross-validating the same recipe GROUPED BY BOUT: contiguous frames of a
bout are near-duplicates (overlapping windows, slow movements), so splitting frames at
random would put copies of the test frames in the training set and report a score the
classifier will never reach on a new bout. Folds are stratified over bouts
(``StratifiedGroupKFold``) with at most as many folds as the rarest behaviour has bouts.

The report (``clf.cv_report``) gives, per behaviour, precision, recall, F1, support (frames)
and bouts of the out-of-fold predictions, and ``chance_f1``: the F1 that guessing at random
with the behaviours' frequencies gets on the same frames, in expectation (the class's share
of them). A behaviour with fewer than 2 bouts cannot be cross-validated: it is still learnt,
its scores are NaN, and a warning says so.

Predictions are (codes, probabilities): codes (frames, individuals) int64, -1 where the
embedding is NaN; probabilities (frames, individuals, K) float32 over ``names``, NaN there.
A file is safetensors arrays (linear: the standardisation and the weights; MLP: the torch
module's tensors) plus a JSON description; never pickle.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SkelmaeError, SkelmaeWarning
from ._common import (
    as_embedding_list,
    check_model,
    need,
    read_arrays,
    resolve_frame_index,
    write_arrays,
)
from .bouts import _runs, bouts_to_frames, frames_to_bouts, remove_short_bouts

__all__ = [
    "KINDS",
    "BehaviourClassifier",
    "fine_tune_classifier",
    "load_classifier",
    "train_classifier",
]

KINDS = ("linear", "mlp")
FORMAT = "napari-skelmae behaviour classifier"
FORMAT_VERSION = 1
METADATA_KEY = "skelmae_classifier"
MLP_DEFAULTS = dict(hidden=64, dropout=0.1, epochs=50, lr=3e-3, weight_decay=1e-3)


# ---------------------------------------------------------------------------- the heads
def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[~(scale > 1e-12)] = 1.0
    return mean, scale


def _balanced_weights(y: np.ndarray, k: int) -> np.ndarray:
    """n / (k * count): every behaviour weighs the same in the loss, however rare."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    return np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 0.0)


def _fit_head(kind: str, x: np.ndarray, y: np.ndarray, k: int, seed: int,
              options: dict[str, Any]) -> dict[str, np.ndarray]:
    """Arrays of a head fitted on rows ``x`` (N, D) with classes ``y`` in 0..k-1 (all
    present)."""
    mean, scale = _standardiser(x)
    z = (x - mean) / scale
    if kind == "linear":
        from sklearn.linear_model import LogisticRegression

        fitted = LogisticRegression(C=options.get("C", 1.0), max_iter=options.get(
            "max_iter", 2000), class_weight="balanced", random_state=seed).fit(z, y)
        w, b = fitted.coef_.astype(np.float64), fitted.intercept_.astype(np.float64)
        if k == 2:  # scikit-learn keeps one logit for two classes: sigmoid(s) = softmax(0, s)
            w = np.vstack([np.zeros_like(w), w])
            b = np.array([0.0, b[0]])
        return {"mean": mean, "scale": scale, "weight": w, "bias": b}
    return _fit_mlp(z, y, k, seed, {**MLP_DEFAULTS, **options}) | {"mean": mean,
                                                                 "scale": scale}


def _mlp(d: int, k: int, hidden: int, dropout: float):
    from torch import nn

    return nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, k))


def _fit_mlp(z: np.ndarray, y: np.ndarray, k: int, seed: int, o: dict[str, Any]
             ) -> dict[str, np.ndarray]:
    import torch

    x = torch.as_tensor(z, dtype=torch.float32)
    t = torch.as_tensor(y, dtype=torch.long)
    weight = torch.as_tensor(_balanced_weights(y, k), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    batch = 1024
    # every random number (initialisation, order, dropout) from the seed; the caller's
    # global generator is left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _mlp(z.shape[1], k, int(o["hidden"]), float(o["dropout"]))
        opt = torch.optim.AdamW(net.parameters(), lr=float(o["lr"]),
                                weight_decay=float(o["weight_decay"]))
        net.train()
        for _ in range(int(o["epochs"])):
            order = torch.randperm(len(x))
            for a in range(0, len(x), batch):
                rows = order[a:a + batch]
                loss = loss_fn(net(x[rows]), t[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval()
    return {f"mlp.{name}": p.detach().cpu().numpy().astype(np.float32)
            for name, p in net.state_dict().items()}


def _head_logits(kind: str, arrays: dict[str, np.ndarray], x: np.ndarray,
                 options: dict[str, Any]) -> np.ndarray:
    z = (np.asarray(x, np.float64) - arrays["mean"]) / arrays["scale"]
    if kind == "linear":
        return z @ arrays["weight"].T + arrays["bias"]
    import torch

    state = {k[len("mlp."):]: torch.as_tensor(v) for k, v in arrays.items()
             if k.startswith("mlp.")}
    hidden, d = state["0.weight"].shape
    net = _mlp(d, state["3.weight"].shape[0], hidden, float(options.get("dropout", 0.0)))
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        return net(torch.as_tensor(z, dtype=torch.float32)).double().numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------- classifier
class BehaviourClassifier:
    """A behaviour classifier on frozen embeddings of one model.

    ``names`` are the behaviours (codes index them); ``classes`` the codes it was trained on
    (behaviours without examples get probability 0); ``cv_report`` / ``cv_summary`` the
    grouped cross-validation (see the module docstring); ``cv_predictions`` the out-of-fold
    codes of the training rows and ``cv_folds`` their fold (-1 elsewhere; neither saved).
    """

    def __init__(self, kind: str, names: Sequence[str], classes: Sequence[int],
                 arrays: dict[str, np.ndarray], *, model_id: str | None, dim: int,
                 options: dict[str, Any] | None = None, cv_report: pd.DataFrame | None = None,
                 cv_summary: dict[str, Any] | None = None):
        if kind not in KINDS:
            raise SkelmaeError(f"unknown classifier kind {kind!r}; choose one of {KINDS}")
        self.kind = kind
        self.names = [str(n) for n in names]
        self.classes = np.asarray(classes, np.int64)
        self.arrays = arrays
        self.model_id = model_id
        self.dim = int(dim)
        self.options = dict(options or {})
        self.cv_report = cv_report if cv_report is not None else pd.DataFrame()
        self.cv_summary = dict(cv_summary or {})
        self.cv_predictions: Any = None
        self.cv_folds: Any = None

    def __repr__(self) -> str:
        f1 = self.cv_summary.get("macro_f1")
        score = f", CV macro F1 {f1:.2f}" if isinstance(f1, float) and np.isfinite(f1) else ""
        return f"BehaviourClassifier({self.kind}, {self.names}{score})"

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities (N, K) over ``names`` of finite rows (N, D)."""
        p = _softmax(_head_logits(self.kind, self.arrays, rows, self.options))
        out = np.zeros((len(rows), len(self.names)))
        out[:, self.classes] = p
        return out

    def predict(
        self, embeddings: Any, frame_index: Any = None, *, min_bout_frames: int | None = None
    ) -> tuple[np.ndarray, np.ndarray] | list[tuple[np.ndarray, np.ndarray]]:
        """(codes, probabilities) of one recording (a list gives a list of pairs). With
        ``min_bout_frames`` (and ``frame_index``), shorter predicted bouts are merged into
        their neighbours (the probabilities stay as computed)."""
        arrays, model_id, listed = as_embedding_list(embeddings)
        check_model("classifier", self.model_id, self.dim, model_id, arrays[0].shape[2])
        frames = resolve_frame_index(frame_index, arrays, embeddings, listed)
        if min_bout_frames is not None and frames is None:
            raise SkelmaeError(f"min_bout_frames={min_bout_frames} needs the video frames of "
                               "the rows: pass frame_index=tracks.frame_index")
        out = []
        for r, values in enumerate(arrays):
            flat = values.reshape(-1, values.shape[2])
            ok = np.isfinite(flat).all(axis=1)
            prob = np.full((len(flat), len(self.names)), np.nan, np.float32)
            codes = np.full(len(flat), -1, np.int64)
            if ok.any():
                p = self.predict_rows(flat[ok])
                prob[ok] = p
                codes[ok] = np.argmax(p, axis=1)
            codes = codes.reshape(values.shape[:2])
            if min_bout_frames is not None:
                codes = remove_short_bouts(codes, frames[r], min_bout_frames)
            out.append((codes, prob.reshape(*values.shape[:2], len(self.names))))
        return out if listed else out[0]

    def predict_bouts(self, embeddings: Any, tracks: Any, *,
                      min_bout_frames: int | None = None) -> pd.DataFrame:
        """Predicted bouts of one recording as a bouts table with a ``probability`` column
        (the mean probability of the predicted behaviour over the bout)."""
        codes, prob = self.predict(embeddings, tracks.frame_index,
                                   min_bout_frames=min_bout_frames)
        chosen = np.take_along_axis(prob, np.maximum(codes, 0)[..., None], axis=2)[..., 0]
        chosen[codes < 0] = np.nan
        return frames_to_bouts(codes, self.names, tracks.frame_index, tracks.individual_names,
                               probability=chosen)

    # ---- file --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        from .. import __version__

        report = self.cv_report.replace({np.nan: None}).to_dict("records")
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "package_version": __version__, "kind": self.kind, "names": self.names,
                "classes": self.classes.tolist(), "model_id": self.model_id, "dim": self.dim,
                "options": self.options, "cv_report": report,
                "cv_summary": _jsonable(self.cv_summary)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the classifier (safetensors + JSON, atomically); returns the path."""
        return write_arrays(path, self.arrays, METADATA_KEY, self.describe(), "classifier")


def load_classifier(path: str | os.PathLike) -> BehaviourClassifier:
    """Read a classifier file written by :meth:`BehaviourClassifier.save`."""
    path = Path(path)
    arrays, meta = read_arrays(path, METADATA_KEY, FORMAT, FORMAT_VERSION, "classifier")
    kind = meta.get("kind")
    if kind not in KINDS:
        raise SkelmaeError(f"'{path}': unknown classifier kind {kind!r}")
    need(arrays, ("mean", "scale") + (("weight", "bias") if kind == "linear" else
                                      ("mlp.0.weight", "mlp.0.bias", "mlp.3.weight",
                                       "mlp.3.bias")), path, "classifier")
    names, classes = meta.get("names") or [], meta.get("classes") or []
    out_dim = (arrays["weight"] if kind == "linear" else arrays["mlp.3.weight"]).shape[0]
    if (arrays["mean"].shape != (meta.get("dim"),) or out_dim != len(classes)
            or any(not 0 <= c < len(names) for c in classes)):
        raise SkelmaeError(f"'{path}': the arrays do not match the description")
    arrays = {k: (v.astype(np.float64) if kind == "linear" else v) for k, v in arrays.items()}
    arrays["mean"] = arrays["mean"].astype(np.float64)
    arrays["scale"] = arrays["scale"].astype(np.float64)
    return BehaviourClassifier(
        kind, names, classes, arrays, model_id=meta.get("model_id"), dim=meta["dim"],
        options=meta.get("options") or {}, cv_report=pd.DataFrame.from_records(
            meta.get("cv_report") or []), cv_summary=meta.get("cv_summary") or {})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


# ------------------------------------------------------------------------------ training
def _codes_list(labels: Any, names: Any, arrays: list[np.ndarray], tracks: Any,
                listed: bool) -> tuple[list[np.ndarray], list[str]]:
    """Per-recording codes and the behaviour names, from codes or from a bouts table."""
    items = list(labels) if listed and not isinstance(labels, pd.DataFrame) else [labels]
    if len(items) != len(arrays):
        raise SkelmaeError(f"{len(items)} label arrays for {len(arrays)} recordings")
    if isinstance(items[0], pd.DataFrame):
        if tracks is None:
            raise SkelmaeError("labels given as a bouts table need tracks= (the recording "
                               "they belong to) to put them on the embeddings' rows")
        recordings = list(tracks) if listed else [tracks]
        found = sorted({str(b) for t in items for b in t["behaviour"]})
        names = list(names) if names is not None else found
        codes = [bouts_to_frames(t, rec.frame_index, rec.individual_names, names)[0]
                 for t, rec in zip(items, recordings)]
    else:
        if names is None:
            raise SkelmaeError("per-frame label codes need names= (the behaviour of each "
                               "code)")
        names = [str(n) for n in names]
        codes = [np.asarray(c) for c in items]
    if len(set(names)) != len(names):
        raise SkelmaeError(f"behaviour names repeat: {names}")
    for c, a in zip(codes, arrays):
        if c.shape != a.shape[:2]:
            raise SkelmaeError(f"labels of shape {c.shape} do not fit embeddings of "
                               f"{a.shape[0]} frames x {a.shape[1]} individuals")
        if not np.issubdtype(c.dtype, np.integer):
            raise SkelmaeError(f"label codes must be integers, got {c.dtype}")
        if c.size and (c.min() < -1 or c.max() >= len(names)):
            raise SkelmaeError(f"label codes must be -1 or 0..{len(names) - 1}")
    return [c.astype(np.int64) for c in codes], names


def _bout_ids(codes: np.ndarray, frames: np.ndarray | None, start: int) -> np.ndarray:
    """A bout number for every labelled row (-1 elsewhere): runs of one code of one
    individual over consecutive video frames."""
    out = np.full(codes.shape, -1, np.int64)
    n = codes.shape[0]
    frames = np.arange(n) if frames is None else frames
    order = np.argsort(frames, kind="stable")
    next_id = start
    for i in range(codes.shape[1]):
        column = codes[order, i]
        for a, b in _runs(column, frames[order]):
            if column[a] >= 0:
                out[order[a:b], i] = next_id
                next_id += 1
    return out


def train_classifier(
    embeddings: Any,
    labels: Any,
    names: Sequence[str] | None = None,
    *,
    tracks: Any = None,
    frame_index: Any = None,
    kind: str = "linear",
    cv: int | None = 5,
    seed: int = 0,
    **options: Any,
) -> BehaviourClassifier:
    """Train a behaviour classifier on frozen embeddings, with a grouped CV report.

    Parameters
    ----------
    embeddings
        ``embed(model, tracks)`` of one recording, or a list of recordings (same model).
    labels, names
        Per-frame codes (frames, individuals) into ``names`` (-1 = unlabelled), or a bouts
        table (e.g. from :func:`load_labels`) with ``tracks=`` the recording(s); ``names``
        then fixes the order of behaviours (default: sorted).
    frame_index
        The rows' video frames (default ``tracks.frame_index`` or consecutive rows): bouts
        end at gaps.
    kind
        ``"linear"`` (multinomial logistic regression on standardised embeddings, balanced
        class weights; option ``C``) or ``"mlp"`` (one hidden layer; options ``hidden``,
        ``dropout``, ``epochs``, ``lr``, ``weight_decay``; class-balanced cross-entropy).
    cv
        Folds of the grouped cross-validation (at most the rarest behaviour's bouts);
        ``None`` or 0 skips it.
    """
    if kind not in KINDS:
        raise SkelmaeError(f"unknown classifier kind {kind!r}; choose one of {KINDS}")
    allowed = {"linear": {"C", "max_iter"}, "mlp": set(MLP_DEFAULTS)}[kind]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise SkelmaeError(f"unknown option(s) {unknown} for a {kind} classifier; it takes "
                           f"{sorted(allowed)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SkelmaeError(f"seed must be a non-negative integer, got {seed!r}")
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, (int, np.integer))
                           or cv < 0 or cv == 1):
        raise SkelmaeError(f"cv must be None, 0 or a number of folds >= 2, got {cv!r}")
    arrays, model_id, listed = as_embedding_list(embeddings)
    codes, names = _codes_list(labels, names, arrays, tracks, listed)
    if frame_index is None and tracks is not None:
        frame_index = [t.frame_index for t in tracks] if listed else tracks.frame_index
    frames = resolve_frame_index(frame_index, arrays, embeddings, listed)

    xs, ys, gs = [], [], []
    next_id = 0
    for r, (values, c) in enumerate(zip(arrays, codes)):
        groups = _bout_ids(c, None if frames is None else frames[r], next_id)
        next_id = int(groups.max(initial=next_id - 1)) + 1
        flat = values.reshape(-1, values.shape[2])
        keep = (c.reshape(-1) >= 0) & np.isfinite(flat).all(axis=1)
        xs.append(flat[keep])
        ys.append(c.reshape(-1)[keep])
        gs.append(groups.reshape(-1)[keep])
    x = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys)
    groups = np.concatenate(gs)
    k = len(names)
    n_bouts = np.array([len(np.unique(groups[y == c])) for c in range(k)])
    support = np.bincount(y, minlength=k)
    present = np.flatnonzero(support > 0)
    absent = [names[c] for c in range(k) if support[c] == 0]
    if len(present) < 2:
        raise SkelmaeError(
            f"a classifier needs labelled frames of at least 2 behaviours with an embedding; "
            f"found {[names[c] for c in present] or 'none'}"
            + (f" ({absent} have no labelled frame where the animal is embedded)"
               if absent else ""))
    if absent:
        warnings.warn(f"behaviours {absent} have no labelled frame with an embedding: the "
                      "classifier will never predict them", SkelmaeWarning, stacklevel=2)
    single = [names[c] for c in present if n_bouts[c] < 2]
    if single:
        warnings.warn(
            f"behaviour(s) {single} have a single labelled bout: the classifier learns them "
            "but cannot be cross-validated on them (their CV scores are NaN); label at least "
            "2 bouts of each behaviour", SkelmaeWarning, stacklevel=2)
    settings = {"seed": int(seed), **options}
    index_of = {c: j for j, c in enumerate(present)}
    y_local = np.array([index_of[c] for c in y], np.int64)

    report, summary, oof, folds = _cross_validate(kind, x, y, y_local, groups, present, names,
                                           n_bouts, cv, seed, options)
    arrays_fit = _fit_head(kind, x, y_local, len(present), seed, options)
    clf = BehaviourClassifier(kind, names, present, arrays_fit, model_id=model_id,
                              dim=arrays[0].shape[2], options=settings, cv_report=report,
                              cv_summary=summary)
    # out-of-fold codes (and the fold of each labelled row) back on each recording's rows
    if oof is not None:
        placed: dict[str, list[np.ndarray]] = {"codes": [], "folds": []}
        a = 0
        for values, c in zip(arrays, codes):
            flat = values.reshape(-1, values.shape[2])
            keep = (c.reshape(-1) >= 0) & np.isfinite(flat).all(axis=1)
            for name, source in (("codes", oof), ("folds", folds)):
                column = np.full(c.size, -1, np.int64)
                column[keep] = source[a:a + int(keep.sum())]
                placed[name].append(column.reshape(c.shape))
            a += int(keep.sum())
        clf.cv_predictions = placed["codes"] if listed else placed["codes"][0]
        clf.cv_folds = placed["folds"] if listed else placed["folds"][0]
    return clf


def _cross_validate(kind, x, y, y_local, groups, present, names, n_bouts, cv, seed, options):
    """Grouped, stratified K-fold over bouts; per-behaviour scores of the out-of-fold
    predictions."""
    from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support
    from sklearn.model_selection import StratifiedGroupKFold

    k = len(names)
    validated = [c for c in present if n_bouts[c] >= 2]
    n_splits = min([cv or 0] + [int(n_bouts[c]) for c in validated]) if validated else 0
    columns = ["behaviour", "precision", "recall", "f1", "support", "bouts", "chance_f1"]
    empty = pd.DataFrame({"behaviour": names, "precision": np.nan, "recall": np.nan,
                          "f1": np.nan, "support": np.bincount(y, minlength=k),
                          "bouts": n_bouts, "chance_f1": np.nan})[columns]
    if not cv or n_splits < 2:
        if cv:
            warnings.warn("no behaviour has 2 labelled bouts: no cross-validation",
                          SkelmaeWarning, stacklevel=3)
        return empty, {"n_splits": 0}, None, None
    folds = np.full(len(y), -1, np.int64)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" notices
        for f, (_, test) in enumerate(splitter.split(x, y_local, groups)):
            folds[test] = f
    oof = np.full(len(y), -1, np.int64)
    for f in range(n_splits):
        test, train = folds == f, folds != f
        trained = np.unique(y_local[train])
        local = {c: j for j, c in enumerate(trained)}
        head = _fit_head(kind, x[train], np.array([local[c] for c in y_local[train]]),
                         len(trained), seed, options) if len(trained) > 1 else None
        if head is None:  # one behaviour left to learn from: it is the only guess
            oof[test] = present[trained[0]]
            continue
        logits = _head_logits(kind, head, x[test], options)
        oof[test] = present[trained[np.argmax(logits, axis=1)]]
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, oof, labels=np.arange(k), zero_division=0)
    report = empty.copy()
    ok = np.isin(np.arange(k), validated)
    report.loc[ok, "precision"] = precision[ok]
    report.loc[ok, "recall"] = recall[ok]
    report.loc[ok, "f1"] = f1[ok]
    share = np.bincount(y, minlength=k) / len(y)
    report.loc[ok, "chance_f1"] = share[ok]
    summary = {
        "n_splits": int(n_splits),
        "n_frames": int(len(y)),
        "n_bouts": int(len(np.unique(groups))),
        "accuracy": float((oof == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, oof)),
        "macro_f1": float(np.mean(f1[ok])),
        "chance_accuracy": float(share.max()),
        "chance_macro_f1": float(np.mean(share[ok])),
    }
    return report, summary, oof, folds


# --------------------------------------------------------------------------- fine-tuning
def fine_tune_classifier(
    model: Any,
    tracks: Any,
    labels: Any,
    names: Sequence[str] | None = None,
    *,
    keypoint_map: Any = None,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 3e-4,
    head_lr: float = 3e-3,
    weight_decay: float = 0.01,
    stride_frames: int | None = None,
    seed: int = 0,
) -> tuple[Any, BehaviourClassifier]:
    """Fine-tune a COPY of the model's encoder together with a linear head on labelled
    windows; returns (fine-tuned model, classifier for its embeddings).

    Every window of the labelled individuals that holds a labelled model frame is a training
    sample; the loss is the class-balanced cross-entropy of the head on the encoder's
    per-frame features (``frame_features``) at the labelled, tracked frames (labels are put
    on the model's time grid at the nearest model frame). The head is linear, so applying it
    to ``embed(fine_tuned, tracks)`` (window features averaged per frame) averages its
    window logits: use ``clf.predict(fine_tuned.embed(tracks))``. The original model is left
    unchanged; the classifier refuses embeddings of any other model (its ``model_id`` is the
    fine-tuned weights'). There is no cross-validation (it would fine-tune the encoder once
    per fold): judge it on a held-out recording or held-out bouts.
    """
    import copy

    import torch

    from ..windows import TimeGrid

    for name, value, minimum in (("steps", steps, 1), ("batch_size", batch_size, 1),
                                 ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
                value < minimum:
            raise SkelmaeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    listed = isinstance(tracks, (list, tuple))
    recordings = list(tracks) if listed else [tracks]
    shapes = [np.empty((t.n_frames, t.n_individuals, 1), np.float32) for t in recordings]
    codes, names = _codes_list(labels, names, shapes, tracks, listed)
    tuned = copy.deepcopy(model)
    net = tuned.net
    device = tuned.device
    config = tuned.window

    windows: list[dict[str, torch.Tensor]] = []
    for rec, c in zip(recordings, codes):
        mapped = tuned.check_compatible(rec, keypoint_map)
        grid = TimeGrid.of(mapped, config)
        position = grid.model_frame(mapped.frame_index)
        nearest = np.round(position).astype(np.int64)
        on_grid = (np.abs(position - nearest) <= 0.5) & (nearest >= 0) & (
            nearest < grid.n_frames)
        for i in range(mapped.n_individuals):
            if not (c[:, i] >= 0).any():
                continue
            grid_labels = np.full(grid.n_frames, -1, np.int64)
            take = on_grid & (c[:, i] >= 0)
            grid_labels[nearest[take]] = c[take, i]
            for batch in tuned.sliding_windows(mapped, i, config, stride_frames, 256):
                frames = batch["model_start"].numpy()[:, None] + np.arange(
                    batch["x"].shape[1])
                inside = (frames >= 0) & (frames < grid.n_frames)
                y = np.where(inside, grid_labels[np.clip(frames, 0, grid.n_frames - 1)], -1)
                y[~batch["valid"].any(dim=2).numpy()] = -1
                keep = (y >= 0).any(axis=1)
                if keep.any():
                    windows.append({"x": batch["x"][keep], "valid": batch["valid"][keep],
                                    "y": torch.from_numpy(y[keep])})
    if not windows:
        raise SkelmaeError("no labelled frame falls in a window with tracked keypoints")
    x_all = torch.cat([w["x"] for w in windows])
    valid_all = torch.cat([w["valid"] for w in windows])
    y_all = torch.cat([w["y"] for w in windows])
    flat = y_all[y_all >= 0].numpy()
    k = len(names)
    counts = np.bincount(flat, minlength=k)
    present = np.flatnonzero(counts > 0)
    if len(present) < 2:
        raise SkelmaeError(f"fine-tuning needs labelled frames of at least 2 behaviours; found "
                           f"{[names[c] for c in present]}")
    absent = [names[c] for c in range(k) if counts[c] == 0]
    if absent:
        warnings.warn(f"behaviours {absent} have no labelled frame in a window: the "
                      "classifier will never predict them", SkelmaeWarning, stacklevel=2)
    local = np.full(k, -1, np.int64)
    local[present] = np.arange(len(present))
    y_local = torch.where(y_all >= 0, torch.as_tensor(local)[y_all.clamp_min(0)], -1)
    weight = torch.as_tensor(_balanced_weights(local[flat], len(present)),
                             dtype=torch.float32, device=device)

    # the head sees features standardised with their statistics under the initial encoder
    # (at the labelled frames), as the frozen probe does; stored in the classifier
    with torch.no_grad():
        net.eval()
        feats = torch.cat([net.frame_features(x_all[a:a + 256].to(device),
                                              valid_all[a:a + 256].to(device))
                           [y_all[a:a + 256] >= 0].cpu() for a in range(0, len(x_all), 256)])
    mean = feats.double().mean(0)
    scale = feats.double().std(0)
    scale[~(scale > 1e-12)] = 1.0
    mean_t, scale_t = mean.float().to(device), scale.float().to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = torch.nn.Linear(int(net.feature_dim), len(present)).to(device)
        opt = torch.optim.AdamW([
            {"params": net.parameters(), "lr": float(lr)},
            {"params": head.parameters(), "lr": float(head_lr)},
        ], weight_decay=float(weight_decay))
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=-1)
        net.train()
        head.train()
        losses = []
        for _ in range(int(steps)):
            rows = torch.randint(len(x_all), (min(batch_size, len(x_all)),))
            x, valid = x_all[rows].to(device), valid_all[rows].to(device)
            target = y_local[rows].to(device)
            logits = head((net.frame_features(x, valid) - mean_t) / scale_t)  # (B, T, K)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(net.parameters()) + list(head.parameters()),
                                           1.0)
            opt.step()
            losses.append(float(loss.detach()))
    net.eval()
    dim = int(net.feature_dim)
    arrays = {"mean": mean.numpy(), "scale": scale.numpy(),
              "weight": head.weight.detach().cpu().double().numpy(),
              "bias": head.bias.detach().cpu().double().numpy()}
    tuned.history = {**tuned.history, "fine_tuned": {
        "steps": int(steps), "behaviours": names, "windows": int(len(x_all)),
        "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:]))}}
    bouts = np.zeros(k, np.int64)
    for rec, c in zip(recordings, codes):
        ids = _bout_ids(c, np.asarray(rec.frame_index), 0)
        labelled = ids >= 0
        first = np.unique(ids[labelled], return_index=True)[1]
        bouts += np.bincount(c[labelled][first], minlength=k)
    support = sum(np.bincount(c[c >= 0], minlength=k) for c in codes)
    report = pd.DataFrame({"behaviour": names, "precision": np.nan, "recall": np.nan,
                           "f1": np.nan, "support": support, "bouts": bouts,
                           "chance_f1": np.nan})
    clf = BehaviourClassifier(
        "linear", names, present, arrays, model_id=tuned.model_id, dim=dim,
        options={"seed": int(seed), "fine_tuned": True, "steps": int(steps), "lr": float(lr),
                 "head_lr": float(head_lr)},
        cv_report=report, cv_summary={"n_splits": 0, "fine_tuned": True,
                                      "final_loss": float(np.mean(losses[-10:]))})
    return tuned, clf
