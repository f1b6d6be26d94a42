"""Learned imputation against interpolation on held-out real frames (prints a table; not a test).

For each recording the last ``--holdout`` fraction of its frames is set aside; the models are
pretrained (``napari_skelmae.training.pretrain``, CPU) on the frames before it only, so no
held-out frame is ever seen in training (nor in pretrain's own validation split). In the
held-out span entries are hidden with the MSAE masking (``masking.two_stage_mask``: 40 % of
the frames wholly, then 50 % of the keypoints of every other frame, a new set in each frame;
round-half-down gives 6 of 13), the span with these holes is given to ``model.impute``, and
the filled points are compared with the hidden truth. Only entries that were tracked count as
targets. The error is the mean Euclidean distance in source units (pixels), also in body
lengths (median abdomen-head distance of the held-out span) or mm (the zebrafish at
0.01578 mm/pixel).

A second scenario (``--gap-frames``, default 16: a quarter of the model window) hides
occlusion-like gaps instead: each keypoint of each animal loses runs of 16 consecutive
frames, about 20 % of its frames, while the other keypoints of those frames stay visible (a
leg behind the body, a tail tip out of focus). Interpolation then bridges 16 frames at a time,
and the other keypoints of the frame are what a model can add.

Baselines, from the same visible entries:

* linear: linear interpolation over time, each keypoint of each animal on its own; a hidden
  entry before the first (after the last) visible entry of its keypoint takes that first
  (last) visible value (``np.interp``'s constant ends). The ratio column is model / linear.
* linear+regr: linear, then in every frame that still shows some keypoints the hidden ones are
  corrected by a linear regression on the visible ones: the interpolation residuals of the
  hidden keypoints are predicted from the visible keypoints' leave-one-out residuals (seen
  position minus what interpolation would have given had it been hidden) by Gaussian
  conditioning with a V x V residual covariance estimated on the TRAINING part under the
  same masking (x and y pooled). Frames wholly hidden keep the linear values. (A rigid
  Procrustes correction from the visible keypoints was tried first and was worse than plain
  interpolation: limbs and tails do not move with the body.)
* local line: each hidden entry from a Gaussian-weighted (sigma 1.5 frames) least-squares
  line through the visible entries of its keypoint within 3 sigma on both sides, i.e.
  smoothing the tracker's jitter over more frames than interpolation's two.
* floor (not a method): each tracked entry predicted from ALL other frames of its keypoint
  (a leave-one-out Gaussian average, sigma 1 frame), i.e. with nothing hidden. The truth is
  itself a pose estimate with frame-to-frame jitter that no method can predict; this shows
  roughly where that noise puts the error of any smooth predictor.

``--recordings proofread`` runs the same on sleap_flies13, whose 2700 instances are all
proofread user instances: a person's clicks as the truth instead of a tracker's estimate. Its
models also pretrain on sleap_analysis_example (same skeleton, another session), as a user
pretrains on all their unlabelled tracks (``--no-extra``: on its own training part only).

Goal (issue 3): model error <= 0.5 x linear interpolation.

    .venv/bin/python benchmarks/bench_impute.py                    # both recordings, ~15 min
    .venv/bin/python benchmarks/bench_impute.py --recordings proofread [--no-extra]
    .venv/bin/python benchmarks/bench_impute.py --recordings flies --methods msae
    .venv/bin/python benchmarks/bench_impute.py --steps 3000 --preset default   # longer run
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "src"))

from options import parse_set  # noqa: E402  (benchmarks/options.py)

from napari_skelmae import load_tracks  # noqa: E402
from napari_skelmae.masking import two_stage_mask  # noqa: E402
from napari_skelmae.tracks import PoseTracks  # noqa: E402
from napari_skelmae.training import pretrain  # noqa: E402
from napari_skelmae.windows import WindowConfig  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Recording:
    name: str
    path: Path
    fps: float
    mm_per_unit: float | None  # None: report body lengths instead
    # model grid and windows: the source rate, so every source row is a model frame
    window: dict
    # pretrain settings of the default (CPU, ~15 min for everything) run, per method
    steps: dict
    batch_size: int = 64
    # other recordings of the same skeleton added to the pretraining data, as a user pretrains
    # on all of their unlabelled sessions (no held-out frame is in them)
    extra_train: tuple[Path, ...] = ()


#: both fly recordings (25 fps): 64-frame windows every 8 frames
FLY_WINDOW = dict(model_fps=25.0, window_s=64 / 25, stride_s=8 / 25, max_gap_s=0.0,
                  reference="window")
RECORDINGS = {
    "flies": Recording(
        "flies", DATA / "sleap_analysis_example" / "predictions.slp", 25.0, None,
        window=FLY_WINDOW, steps={"msae": 600, "skeletonmae": 1000},
    ),
    "fish": Recording(
        "fish", DATA / "zebrafish_headrestrained_dlc" / "example_headrestrained_DLC_250fps.csv.gz",
        250.0, 0.01578,
        window=dict(model_fps=250.0, window_s=64 / 250, stride_s=16 / 250, max_gap_s=0.0,
                    reference="window"),
        steps={"msae": 600, "skeletonmae": 1000},
    ),
    # proofread: every instance of this clip is a user instance (../shared/data/README.md), so
    # the truth is a person's clicks, not a tracker's jittery estimate; not in the default run
    "proofread": Recording(
        "proofread", DATA / "sleap_flies13" / "demo-flies13-preds.slp", 25.0, None,
        window=FLY_WINDOW, steps={"msae": 600, "skeletonmae": 1000},
        extra_train=(DATA / "sleap_analysis_example" / "predictions.slp",),
    ),
}
METHODS = ("msae", "skeletonmae")
#: the imputation preset of each method (docs/methods/*.md, Imputation), MSAE at the small
#: preset's widths (the default widths are ~4x slower on a CPU); --set overrides
METHOD_SETTINGS = {
    "msae": dict(preset="impute", embed_dim=16, encoder=((16, 16, 8), (16, 32, 8)),
                 decoder=((32, 16, 8),)),
    "skeletonmae": dict(preset="impute"),
}


# ------------------------------------------------------------------------------ masking
def hide(tracks: PoseTracks, seed: int, frame_ratio: float = 0.4, joint_ratio: float = 0.5):
    """The MSAE two-stage mask drawn over the whole span of each individual (independent of
    what was tracked): ``(holed tracks, hidden (F, I, V), frame_hidden (F, I))``."""
    f, i, v = tracks.positions.shape[:3]
    g = torch.Generator().manual_seed(seed)
    masked, frame_masked = two_stage_mask(i, f, v, frame_ratio, joint_ratio, generator=g)
    hidden = masked.numpy().transpose(1, 0, 2).copy()
    frame_hidden = frame_masked.numpy().T.copy()
    pos = tracks.positions.copy()
    pos[hidden] = np.nan
    conf = tracks.confidence.copy()
    conf[hidden] = np.nan
    return tracks.replace(positions=pos, confidence=conf), hidden, frame_hidden


def hide_gaps(tracks: PoseTracks, seed: int, gap_frames: int, fraction: float = 0.2):
    """Occlusion-like holes: every keypoint of every individual loses runs of ``gap_frames``
    consecutive frames (random, non-overlapping starts) until about ``fraction`` of its
    frames are hidden; the other keypoints of those frames stay visible. Returns like
    :func:`hide`; ``frame_hidden`` marks frames where all keypoints happen to be hidden."""
    f, i, v = tracks.positions.shape[:3]
    rng = np.random.default_rng(seed)
    hidden = np.zeros((f, i, v), bool)
    n_gaps = max(1, round(fraction * f / gap_frames))
    for ind in range(i):
        for k in range(v):
            slots = rng.choice(max(f // gap_frames, 1), size=min(n_gaps, max(f // gap_frames, 1)),
                               replace=False)
            for slot in slots:  # gaps on a grid of gap_frames: never overlapping
                hidden[slot * gap_frames: (slot + 1) * gap_frames, ind, k] = True
    pos = tracks.positions.copy()
    pos[hidden] = np.nan
    conf = tracks.confidence.copy()
    conf[hidden] = np.nan
    return tracks.replace(positions=pos, confidence=conf), hidden, hidden.all(axis=2)


# ---------------------------------------------------------------------------- baselines
def linear_fill(pos: np.ndarray) -> np.ndarray:
    """Per keypoint and animal, linear in time from the finite entries; constant past the
    first / last one (np.interp); all-NaN series stay NaN."""
    out = pos.copy()
    t = np.arange(pos.shape[0])
    for i in range(pos.shape[1]):
        for k in range(pos.shape[2]):
            seen = np.isfinite(pos[:, i, k, 0])
            if not seen.any():
                continue
            for c in range(pos.shape[3]):
                out[:, i, k, c] = np.interp(t, t[seen], pos[seen, i, k, c])
    return out


def leave_one_out_linear(pos: np.ndarray) -> np.ndarray:
    """For every finite entry, the linear interpolation between the previous and the next
    finite entry of the same series (what linear_fill would give had it been hidden)."""
    out = np.full_like(pos, np.nan)
    t = np.arange(pos.shape[0])
    for i in range(pos.shape[1]):
        for k in range(pos.shape[2]):
            seen = np.flatnonzero(np.isfinite(pos[:, i, k, 0]))
            if len(seen) < 2:
                continue
            prev = np.concatenate([[seen[0]], seen[:-1]])  # ends: the one neighbour
            nxt = np.concatenate([seen[1:], [seen[-1]]])
            prev[0], nxt[-1] = nxt[0], prev[-1]
            span = np.maximum(nxt - prev, 1)
            w = np.where(nxt == prev, 0.0, (t[seen] - prev) / span)[:, None]
            out[seen, i, k] = pos[prev, i, k] * (1 - w) + pos[nxt, i, k] * w
    return out


def interpolation_residuals(tracks: PoseTracks, seed: int) -> np.ndarray:
    """(frames*individuals*C, V) residuals truth - interpolation under the MSAE mask: for a
    hidden entry of linear_fill, for a visible one of the leave-one-out interpolation; rows
    with any untracked keypoint are dropped."""
    holed, hidden, _ = hide(tracks, seed)
    truth = tracks.positions
    pred = np.where(hidden[..., None], linear_fill(holed.positions),
                    leave_one_out_linear(holed.positions))
    r = np.moveaxis(truth - pred, -1, 2).reshape(-1, truth.shape[2])  # (F*I*C, V)
    return r[np.isfinite(r).all(1)]


def regression_fill(pos: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """linear_fill, corrected in every partly visible frame by the linear least-squares
    (Gaussian conditioning) prediction of the hidden keypoints' interpolation residuals from
    the visible keypoints' leave-one-out residuals, x and y alike: r_h = S_hs S_ss^-1 r_s."""
    out = linear_fill(pos)
    loo = leave_one_out_linear(pos)
    seen = np.isfinite(pos[..., 0])
    for f, i in zip(*np.nonzero(seen.any(-1) & ~seen.all(-1))):
        s = seen[f, i] & np.isfinite(loo[f, i, :, 0])
        h = ~seen[f, i] & np.isfinite(out[f, i, :, 0])
        if not s.any() or not h.any():
            continue
        gain = np.linalg.solve(covariance[np.ix_(s, s)], covariance[np.ix_(s, h)])  # (S, H)
        out[f, i, h] += gain.T @ (pos[f, i, s] - loo[f, i, s])
    return out


def local_line_fill(pos: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per keypoint and animal, each hidden entry from a Gaussian-weighted (``sigma`` frames)
    least-squares line through the visible entries within 3 sigma on both sides (a local
    linear smoother: it averages the tracker's jitter over more frames than interpolation's
    two). Where there are not visible entries on both sides: linear_fill's value."""
    out = linear_fill(pos)
    reach = int(np.ceil(3 * sigma))
    t = np.arange(pos.shape[0])
    for i in range(pos.shape[1]):
        for k in range(pos.shape[2]):
            seen = np.isfinite(pos[:, i, k, 0])
            ts, xs = t[seen], pos[seen, i, k]
            for h in np.flatnonzero(~seen):
                lo, hi = np.searchsorted(ts, h - reach), np.searchsorted(ts, h + reach + 1)
                d = ts[lo:hi] - h
                if hi - lo < 2 or (d > 0).all() or (d < 0).all():
                    continue
                w = np.exp(-0.5 * (d / sigma) ** 2)
                design = np.stack([np.ones_like(d), d], axis=1).astype(np.float64)
                weighted = design * w[:, None]
                beta = np.linalg.solve(weighted.T @ design, weighted.T @ xs[lo:hi])
                out[h, i, k] = beta[0]
    return out


def noise_floor(pos: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Each entry from all OTHER frames of its series: a Gaussian-weighted average (sigma in
    frames) of the linearly filled series with the entry's own frame left out."""
    full = linear_fill(pos)
    reach = int(3 * sigma)
    k = np.arange(-reach, reach + 1)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    w[reach] = 0.0
    w /= w.sum()
    padded = np.concatenate([np.repeat(full[:1], reach, 0), full, np.repeat(full[-1:], reach, 0)])
    out = np.zeros_like(full)
    for j, wj in zip(k, w):
        out += wj * padded[reach + j: reach + j + len(full)]
    return out


# ------------------------------------------------------------------------------ scoring
def body_length(tracks: PoseTracks) -> float:
    """Median distance between the heading keypoints (abdomen -> head for the flies)."""
    from napari_skelmae.windows import resolve_normalisation

    norm = resolve_normalisation(tracks, WindowConfig())
    if norm.heading is None:
        return float("nan")
    tail, head = norm.heading
    d = np.linalg.norm(tracks.positions[:, :, head] - tracks.positions[:, :, tail], axis=-1)
    return float(np.nanmedian(d))


def errors(pred: np.ndarray, truth: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pred[target] - truth[target], axis=-1)


@dataclasses.dataclass
class Row:
    recording: str
    method: str
    error: float  # mean Euclidean distance, source units
    error_whole: float  # on wholly hidden frames only
    error_partial: float  # on partly visible frames only
    linear: float
    unit_scale: float  # source units -> the second unit (mm, or body lengths)
    unit: str
    train_s: float | None = None
    impute_s: float | None = None
    left_missing: int = 0

    @property
    def ratio(self) -> float:
        return self.error / self.linear


def score(name, method, pred, truth, target, whole, linear_err, unit_scale, unit, **kw) -> Row:
    ok = target & np.isfinite(pred[..., 0])
    left = int((target & ~ok).sum())
    # entries a method could not fill count with the linear value (never silently dropped)
    filled = np.where(ok[..., None], pred, linear_err["pred"])
    e = np.linalg.norm(filled - truth, axis=-1)
    return Row(name, method, float(e[target].mean()), float(e[target & whole].mean()),
               float(e[target & ~whole].mean()), linear_err["mean"], unit_scale, unit,
               left_missing=left, **kw)


# ------------------------------------------------------------------------------- runner
def split(tracks: PoseTracks, holdout: float, blocks: int):
    """(training part, held-out blocks): the recording is cut into ``blocks`` equal
    segments and the middle ``holdout`` of each segment's rows is held out, so the held-out
    frames sample the whole session (the last fifth of both recordings is their quietest
    part). The training part is the recording without those rows (one PoseTracks with gaps;
    no window it is cut into can reach a held-out row)."""
    tracks = tracks.sorted_by_frame()
    n = tracks.n_frames
    held = np.zeros(n, bool)
    spans = []
    for b in range(blocks):
        a, z = round(b * n / blocks), round((b + 1) * n / blocks)
        size = round(holdout * (z - a))
        start = a + (z - a - size) // 2
        held[start: start + size] = True
        spans.append((start, start + size))
    return tracks.sel(frames=~held), [tracks.sel(frames=slice(a, z)) for a, z in spans]


def pieces(tracks: PoseTracks) -> list[PoseTracks]:
    """The contiguous runs of rows of ``tracks`` (split where frame numbers jump)."""
    cuts = np.flatnonzero(np.diff(tracks.frame_index) > 1) + 1
    edges = [0, *cuts.tolist(), tracks.n_frames]
    return [tracks.sel(frames=slice(a, z)) for a, z in zip(edges[:-1], edges[1:])]


def load(rec: Recording) -> PoseTracks:
    return load_tracks(rec.path, fps=rec.fps, video=False)


@dataclasses.dataclass
class Scenario:
    """One way of hiding entries of the held-out blocks, and what scoring it needs."""

    name: str
    holed: list  # the held-out blocks with their holes (PoseTracks)
    target: np.ndarray  # hidden tracked entries (F, I, V), blocks stacked
    whole: np.ndarray  # entries in frames hidden as a whole
    linear_err: dict | None = None


def scenarios(blocks, args) -> list[Scenario]:
    """The MSAE masking of issue 3 and, with --gap-frames, occlusion-like gaps."""
    truth = np.concatenate([b.positions for b in blocks])
    out = []
    kinds = [("msae mask", lambda b, i: hide(b, args.mask_seed + i))]
    if args.gap_frames:
        kinds.append((f"gaps {args.gap_frames}",
                      lambda b, i: hide_gaps(b, args.mask_seed + 100 + i, args.gap_frames)))
    for name, make in kinds:
        masks = [make(block, i) for i, block in enumerate(blocks)]
        hidden = np.concatenate([m[1] for m in masks])
        frame_hidden = np.concatenate([m[2] for m in masks])
        target = hidden & np.isfinite(truth[..., 0])
        whole = np.broadcast_to(frame_hidden[..., None], target.shape)
        out.append(Scenario(name, [m[0] for m in masks], target, whole))
    return out


def run_recording(rec: Recording, methods, args) -> list[Row]:
    tracks = load(rec)
    train, blocks = split(tracks, args.holdout, args.blocks)

    def cat(arrays):  # held-out blocks stacked along frames, for scoring only
        return np.concatenate(arrays, axis=0)

    truth = cat([b.positions for b in blocks])
    if rec.mm_per_unit is not None:
        unit_scale, unit = rec.mm_per_unit, "mm"
    else:
        unit_scale, unit = 1.0 / body_length(tracks), "BL"
    spans = ", ".join(f"{b.frame_index[0]}-{b.frame_index[-1]}" for b in blocks)
    cases = scenarios(blocks, args)
    # loaded once for all methods; only what pretraining uses
    extra = [] if args.no_extra or not methods else [
        load_tracks(p, fps=rec.fps, video=False) for p in rec.extra_train]
    print(f"\n{rec.name}: {tracks.n_frames} frames, {tracks.n_individuals} individual(s), "
          f"{tracks.n_keypoints} keypoints at {rec.fps:g} fps; held out: {len(blocks)} blocks "
          f"of {blocks[0].n_frames} frames (frames {spans}), "
          f"training on the other {train.n_frames}"
          + "".join(f" + {p.parent.name}/{p.name}" for p in rec.extra_train[:len(extra)]),
          flush=True)
    t0 = time.perf_counter()
    residuals = np.concatenate([interpolation_residuals(piece, args.mask_seed + 1000 + i)
                                for i, piece in enumerate(pieces(train))])
    covariance = residuals.T @ residuals / len(residuals)
    covariance_s = time.perf_counter() - t0
    floor = cat([noise_floor(b.positions) for b in blocks])
    rows = []
    for case in cases:
        label = f"{rec.name}/{case.name}"
        print(f"{label}: {int(case.target.sum())} hidden tracked entries "
              f"({int((case.target & case.whole).sum())} in wholly hidden frames)")
        linear = cat([linear_fill(h.positions) for h in case.holed])
        case.linear_err = {"pred": linear,
                           "mean": float(errors(linear, truth, case.target).mean())}
        common = (truth, case.target, case.whole, case.linear_err, unit_scale, unit)
        rows.append(score(label, "linear", linear, *common))
        t0 = time.perf_counter()
        regressed = cat([regression_fill(h.positions, covariance) for h in case.holed])
        rows.append(score(label, "linear+regr", regressed, *common,
                          impute_s=time.perf_counter() - t0 + covariance_s))
        line = cat([local_line_fill(h.positions) for h in case.holed])
        rows.append(score(label, "local line", line, *common))
        rows.append(score(label, "floor", floor, *common))
        print_rows(rows[-4:])

    for method in methods:
        steps = args.steps or rec.steps[method]
        overrides = {**METHOD_SETTINGS[method],
                     **({"preset": args.preset} if args.preset else {}),
                     **args.set.get(method, {})}
        preset = overrides.pop("preset", None)
        t0 = time.perf_counter()
        model = pretrain(
            [train, *extra] if extra else train, method, preset=preset,
            window={**rec.window, **args.window},
            max_steps=steps, batch_size=rec.batch_size, lr=args.lr, device="cpu",
            precision=args.precision, seed=args.seed, log_every=max(1, steps // 10),
            augment=not args.no_augment,
            callbacks=[progress_printer(rec.name, method)] if args.verbose else (),
            **overrides,
        )
        train_s = time.perf_counter() - t0
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            model.save(Path(args.save) / f"{rec.name}-{method}.skelmae")
        for case in cases:
            t0 = time.perf_counter()
            filled = cat([model.impute(h).positions for h in case.holed])
            impute_s = time.perf_counter() - t0
            rows.append(score(f"{rec.name}/{case.name}", method, filled, truth, case.target,
                              case.whole, case.linear_err, unit_scale, unit, train_s=train_s,
                              impute_s=impute_s))
            print_rows(rows[-1:])
    return rows


def progress_printer(name, method):
    def show(p):
        val = f" val {p.val_loss:.4f}" if p.val_loss is not None else ""
        train = f" train {p.train_loss:.4f}" if p.train_loss is not None else ""
        print(f"  [{name} {method}] step {p.step}/{p.total_steps}{train}{val} "
              f"({p.windows_per_s:.0f} windows/s)", flush=True)
    return show


HEADER = (f"{'recording':<20} {'method':<13} {'error':>8} {'(unit)':>9} {'whole':>8} "
          f"{'partial':>8} {'linear':>8} {'ratio':>6} {'train s':>8} {'impute s':>8}")


def print_rows(rows: list[Row]) -> None:
    for r in rows:
        train = f"{r.train_s:8.0f}" if r.train_s is not None else f"{'':8}"
        imp = f"{r.impute_s:8.1f}" if r.impute_s is not None else f"{'':8}"
        left = f"  ({r.left_missing} left unfilled, scored as linear)" if r.left_missing else ""
        print(f"{r.recording:<20} {r.method:<13} {r.error:8.3f} "
              f"{r.error * r.unit_scale:6.4f} {r.unit:<2} {r.error_whole:8.3f} "
              f"{r.error_partial:8.3f} {r.linear:8.3f} {r.ratio:6.3f} {train} {imp}{left}",
              flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recordings", nargs="+", default=["flies", "fish"], choices=RECORDINGS)
    ap.add_argument("--no-extra", action="store_true",
                    help="pretrain on the recording's own training part only")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--steps", type=int, default=None,
                    help="optimiser steps per model (default: per recording and method)")
    ap.add_argument("--preset", default=None,
                    help="model preset of both methods (default: METHOD_SETTINGS)")
    ap.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                    help="model options, e.g. msae.visible_weight=0.1 or msae.preset=small")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--holdout", type=float, default=0.2, help="held-out share of the frames")
    ap.add_argument("--blocks", type=int, default=4, help="held-out blocks spread over time")
    ap.add_argument("--gap-frames", type=int, default=16,
                    help="also score occlusion-like gaps of this many frames in each "
                         "keypoint (about 20 %% of its frames); 0: the MSAE masking only")
    ap.add_argument("--window", nargs="*", default=[], metavar="KEY=VALUE",
                    help="WindowConfig fields over the recording's, e.g. reference=frame")
    ap.add_argument("--no-augment", action="store_true", help="pretrain without augmentation")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--mask-seed", type=int, default=1, help="seed of the held-out mask")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--save", default=None, help="folder to write the trained models to")
    ap.add_argument("--verbose", action="store_true", help="print training progress")
    args = ap.parse_args(argv)
    args.set = parse_set(args.set)
    args.window = parse_set([f"w.{item}" for item in args.window]).get("w", {})
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}, holdout {args.holdout:.0%}, mask seed {args.mask_seed}")
    print("error: mean Euclidean distance of the hidden tracked entries to the truth, source "
          "units (px); (unit): the same in mm (fish) or body lengths (BL); whole / partial: "
          "on wholly hidden / partly visible frames; ratio: error / linear")
    rows = []
    for name in args.recordings:
        rows += run_recording(RECORDINGS[name], args.methods, args)
    print("\n" + HEADER)
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
