"""Embedding and clustering figures on long recordings (prints tables; not a test).

Each method at its default config (weights from a 2-step ``pretrain``: speed and memory do
not depend on what the weights are) embeds sleap_analysis_example (2 flies x 13 keypoints,
3000 frames) tiled in memory at 30 fps: every method a ``--throughput-minutes`` recording,
then the first method also 15, 30 and 60 minutes (``--minutes``; 60 min is the 1-hour
recording of issue 4: 108 000 frames, 216 000 animal-frames), with ``model.embed`` at its
defaults (float32, batch 64, stride max(patch, T/16), so each model frame is covered by about
16 windows), on the CPU with ``--threads`` threads. Per run, in a fresh process:

* animal-frames/s: frames x individuals / embedding wall time;
* GFLOP/s: the encoder's forward FLOPs per window (``torch.utils.flop_counter``, attention
  through SDPA's math path) x windows run / wall time, and that as a fraction of this machine's
  float32 matmul peak measured in the same run (``bench_pretrain.matmul_peak``);
* memory: resident set size just before ``embed`` (torch, the tracks, the model), the peak
  during it (``ru_maxrss``), and the growth net of the output array itself (frames x
  individuals x D float32, which any per-frame result must hold): that working memory is what
  must stay flat as the recording grows.

Then, on the 1-hour embeddings of the first method: ``cluster`` with k-means (10), a GMM (10)
and HDBSCAN at their default fitting samples (``MAX_FIT_ROWS``), fit + label of every row.

    .venv/bin/python benchmarks/bench_embed.py [--methods mamp msae] [--minutes 15 60]
        [--throughput-minutes 5] [--threads 2] [--no-cluster]

Results: see the closing note of issue 4 and docs/analysis.md ("Speed").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sleap_analysis_example" / "predictions.slp"
CACHE = REPO / ".cache" / "bench"
METHODS = ("mamp", "skeleton2vec", "skeletonmae", "msae")
FPS = 30.0
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain import matmul_peak, max_rss_mb, rss_mb  # noqa: E402


def tiled(minutes: float):
    """sleap_analysis_example repeated to ``minutes`` at 30 fps (rows and frames consecutive)."""
    import numpy as np

    from napari_skelmae import load_tracks

    src = load_tracks(DATA, fps=FPS, video=False).sorted_by_frame()
    n = int(round(minutes * 60 * FPS))
    reps = -(-n // src.n_frames)
    pos = np.concatenate([src.positions] * reps)[:n]
    conf = np.concatenate([src.confidence] * reps)[:n]
    return src.replace(positions=pos, confidence=conf, frame_index=np.arange(n))


def model_path(method: str) -> Path:
    return CACHE / f"embed-{method}.skelmae"


def make_models(methods) -> None:
    """A default-config model per method (2 optimiser steps), saved once."""
    from napari_skelmae import load_tracks
    from napari_skelmae.training import pretrain

    CACHE.mkdir(parents=True, exist_ok=True)
    tracks = load_tracks(DATA, fps=FPS, video=False)
    for method in methods:
        if not model_path(method).exists():
            pretrain(tracks, method, max_steps=2, batch_size=8, device="cpu",
                     precision="float32", seed=0).save(model_path(method))


def window_flops(model, tracks) -> tuple[float, int]:
    """(forward FLOPs of one window of ``frame_features``, windows per batch measured)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    batch = next(iter(model.sliding_windows(tracks, 0, model.window, 8, 32)))
    counter = FlopCounterMode(display=False)
    net = model.net.eval()
    with torch.no_grad(), counter, sdpa_kernel(SDPBackend.MATH):
        net.frame_features(batch["x"], batch["valid"])
    return float(counter.get_total_flops()) / len(batch["x"]), len(batch["x"])


def worker(method: str, minutes: float, threads: int, do_cluster: bool,
           batch_size: int | None = None, precision: str = "auto") -> dict:
    import numpy as np
    import torch

    from napari_skelmae import load_model

    torch.set_num_threads(threads)
    model = load_model(model_path(method), map_location="cpu")
    tracks = tiled(minutes)
    flops, _ = window_flops(model, tracks.sel(frames=slice(0, 600)))
    windows = [0]

    def progress(done, total):
        windows[0] = done

    rss_before, max_before = rss_mb(), max_rss_mb()
    t0 = time.perf_counter()
    emb = model.embed(tracks, progress=progress, precision=precision,
                      **({"batch_size": batch_size} if batch_size else {}))
    wall = time.perf_counter() - t0
    out = {
        "method": method, "minutes": minutes, "frames": tracks.n_frames,
        "individuals": tracks.n_individuals, "dim": int(emb.shape[2]),
        "window_frames": model.window.n_frames, "windows": windows[0], "wall_s": wall,
        "gflop_per_window": flops / 1e9, "rss_before_mb": rss_before,
        "max_before_mb": max_before, "peak_rss_mb": max_rss_mb(),
        "output_mb": emb.nbytes / 2**20, "nan_fraction": float(np.isnan(emb[..., 0]).mean()),
    }
    if do_cluster:
        from napari_skelmae.analysis.clustering import cluster

        timings = {}
        for name, k in (("kmeans", 10), ("gmm", 10), ("hdbscan", None)):
            t0 = time.perf_counter()
            labels, fitted = cluster(emb, name, k)
            timings[name] = (time.perf_counter() - t0, int(fitted.n_clusters))
        out["cluster"] = timings
    return out


def run_worker(method: str, minutes: float, args, do_cluster: bool) -> dict:
    cmd = [sys.executable, __file__, "--_worker", method, str(minutes), "--threads",
           str(args.threads)] + (["--_cluster"] if do_cluster else []) + (
           ["--batch-size", str(args.batch_size)] if args.batch_size else []) + [
           "--precision", args.precision]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{method}/{minutes} min failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--minutes", nargs="+", type=float, default=[15.0, 30.0, 60.0],
                    help="lengths of the first method's memory series")
    ap.add_argument("--throughput-minutes", type=float, default=5.0,
                    help="length of every method's throughput run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="windows per batch (default: embed's)")
    ap.add_argument("--precision", default="auto", help="embed's precision (auto: float32 on "
                    "the CPU); 'of peak' is always against the float32 peak")
    ap.add_argument("--no-cluster", action="store_true")
    ap.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_cluster", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        method, minutes = args._worker
        print(json.dumps(worker(method, float(minutes), args.threads, args._cluster,
                                args.batch_size, args.precision)))
        return

    import torch

    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    make_models(args.methods)
    peak = matmul_peak("float32", 2048)
    print(f"torch {torch.__version__}, {args.threads} threads; float32 matmul peak (2048^3) "
          f"{peak:.0f} GFLOP/s")
    print("sleap_analysis_example tiled at 30 fps: 2 animals x 13 keypoints; embed defaults "
          f"(float32, batch {args.batch_size or 64}, stride max(patch, T/16))")
    print(f"{'method':<13} {'min':>4} {'frames':>7} {'D':>4} {'windows':>8} {'wall s':>7} "
          f"{'animal-fr/s':>11} {'GFLOP/s':>8} {'of peak':>7} {'RSS before':>10} "
          f"{'peak':>6} {'output':>7} {'working':>8}")
    clustered = None
    results = []
    runs = [(m, args.throughput_minutes) for m in args.methods]
    runs += [(args.methods[0], m) for m in sorted(args.minutes) if m != args.throughput_minutes]
    for method, minutes in runs:
        do_cluster = (not args.no_cluster and clustered is None
                      and method == args.methods[0] and minutes == max(args.minutes))
        r = run_worker(method, minutes, args, do_cluster)
        results.append(r)
        if do_cluster:
            clustered = r
        rate = r["frames"] * r["individuals"] / r["wall_s"]
        gflops = r["gflop_per_window"] * r["windows"] / r["wall_s"]
        growth = r["peak_rss_mb"] - r["rss_before_mb"]
        print(f"{method:<13} {minutes:>4g} {r['frames']:>7} {r['dim']:>4} {r['windows']:>8} "
              f"{r['wall_s']:>7.1f} {rate:>11.0f} {gflops:>8.1f} {gflops / peak:>7.1%} "
              f"{r['rss_before_mb']:>8.0f}MB {r['peak_rss_mb']:>4.0f}MB "
              f"{r['output_mb']:>5.0f}MB {growth - r['output_mb']:>6.0f}MB")
    print("working = peak - RSS before - output (the embedding array itself); "
          f"windows: of {results[0]['window_frames']} model frames, every individual")
    if clustered is not None:
        rows = clustered["frames"] * clustered["individuals"]
        print(f"\nclustering the {clustered['minutes']:g}-minute {clustered['method']} "
              f"embeddings ({rows} rows x {clustered['dim']}; fit on the default sample, every "
              "row labelled):")
        for name, (seconds, k) in clustered["cluster"].items():
            print(f"  {name:<8} {seconds:6.1f} s, {k} clusters")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
