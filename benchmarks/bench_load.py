"""Reading and layer-building figures (prints a table; not a test).

1. Load time of each recording in ../shared/data through ``load_tracks``.
2. A 1-hour recording: sleap_analysis_example (2 flies x 13 nodes, 3000 frames) tiled to
   108 000 frames (1 h at 30 fps, about 2.8 M points) and saved as .slp once (cached in
   .cache/bench/). For 15, 30 and 60 minutes: the bare ``sleap_io.load_slp`` time, our
   ``load_tracks`` time, the time to build every layer (LayerDataTuples and the napari layer
   objects), each as a ratio to the bare read, and the peak traced memory of load + layers.

Goal (issue "Tracks in, layers out"): layers within 2x the bare read, memory linear in frames.

    .venv/bin/python benchmarks/bench_load.py [--skip-files] [--minutes 15 30 60]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / ".cache" / "bench"


def timed(fn, repeat: int = 3):
    """Best wall time of ``repeat`` runs, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_mb(fn) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def bench_files() -> None:
    from napari_skelmae import SkelmaeError, load_tracks

    print("\n## load_tracks on every recording in ../shared/data")
    print(f"{'file':<78} {'frames':>7} {'shape':>16} {'ms':>8}")
    for p in sorted(DATA.rglob("*")):
        if not p.is_file() or p.suffix.lower() in {".png", ".mp4", ".yaml", ".md", ".tsv"}:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t, tr = timed(lambda p=p: load_tracks(p), repeat=2)
        except SkelmaeError:
            continue
        shape = "x".join(map(str, tr.positions.shape))
        print(f"{str(p.relative_to(DATA)):<78} {tr.n_frames:>7} {shape:>16} {t * 1e3:>8.1f}")


def tiled_slp(minutes: int) -> Path:
    """sleap_analysis_example tiled to ``minutes`` at 30 fps, saved once as .slp."""
    import sleap_io as sio

    out = CACHE / f"analysis_example_{minutes}min.slp"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    src = sio.load_slp(str(DATA / "sleap_analysis_example/predictions.slp"))
    n_src = max(lf.frame_idx for lf in src.labeled_frames) + 1
    target = minutes * 60 * 30
    frames = []
    for k in range(int(np.ceil(target / n_src))):
        for lf in src.labeled_frames:
            idx = lf.frame_idx + k * n_src
            if idx < target:
                frames.append(sio.LabeledFrame(video=lf.video, frame_idx=idx,
                                               instances=list(lf.instances)))
    labels = sio.Labels(labeled_frames=frames, videos=src.videos, skeletons=src.skeletons,
                        tracks=src.tracks)
    tmp = out.with_suffix(".tmp.slp")
    sio.save_slp(labels, str(tmp))
    tmp.replace(out)
    return out


def build_layers(tracks):
    from napari.layers import Layer

    from napari_skelmae.napari.layers import tracks_to_layers

    tuples = tracks_to_layers(tracks, video=False)
    return [Layer.create(*t) for t in tuples]


def bench_hour(minutes_list: list[int]) -> None:
    import sleap_io as sio

    from napari_skelmae import load_tracks

    print("\n## tiled sleap_analysis_example (2 animals x 13 keypoints, 30 fps)")
    print(f"{'minutes':>7} {'frames':>7} {'points':>9} {'sio read s':>10} {'load_tracks s':>13}"
          f" {'ratio':>6} {'layers s':>8} {'ratio':>6} {'load+layers':>11} {'ratio':>6}"
          f" {'peak MB':>8} {'MB/min':>7}")
    for minutes in minutes_list:
        path = tiled_slp(minutes)
        t_sio, _ = timed(lambda p=path: sio.load_slp(str(p)), repeat=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_load, tracks = timed(lambda p=path: load_tracks(p, video=False), repeat=2)
            t_layers, layers = timed(lambda t=tracks: build_layers(t), repeat=2)
            n_points = len(next(ly for ly in layers if ly._type_string == "points").data)
            del layers
            mem = peak_mb(lambda p=path: build_layers(load_tracks(p, video=False)))
        total = t_load + t_layers
        print(f"{minutes:>7} {tracks.n_frames:>7} {n_points:>9} {t_sio:>10.2f} {t_load:>13.2f}"
              f" {t_load / t_sio:>6.2f} {t_layers:>8.2f} {t_layers / t_sio:>6.2f}"
              f" {total:>11.2f} {total / t_sio:>6.2f} {mem:>8.0f} {mem / minutes:>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-files", action="store_true")
    ap.add_argument("--minutes", type=int, nargs="+", default=[15, 30, 60])
    args = ap.parse_args()
    if not args.skip_files:
        bench_files()
    bench_hour(args.minutes)


if __name__ == "__main__":
    main()
