"""Skeleton as a napari Vectors layer vs a Shapes layer of lines (prints a table; not a test).

The two-fly ``sleap_analysis_example`` recording (3000 frames, 12 edges, 2 % missing) is
tiled to 3000, 10800 (6 min at 30 fps), 36000 and 108000 frames (1 hour: 2.5 M segments).
Each (size, layer kind) runs in a fresh process, so that the growth of its resident memory
is the layer's alone (tracemalloc is no use here: tracing millions of Shapes objects costs
gigabytes itself). Per row: the time to make the LayerDataTuple, to build the layer object
from it, the MB that build adds, the time to add it to a headless ``Viewer(show=False)``
and the median of one frame step (``viewer.dims.set_current_step``: slicing the layer and
updating its vispy node). The points layer is measured the same way for comparison, and
at the largest size also row-major ("C") copies of the vectors and points arrays, which
shows what the column-major layout of ``tracks_to_layers``' arrays buys. A last table
compares the two ways of colouring the 1-hour points (colour cycle over a feature vs
explicit colours).

    xvfb-run -a .venv/bin/python benchmarks/bench_skeleton_layer.py \
        [--frames 3000 108000] [--shapes-max-frames 10800]

Shapes are only built up to ``--shapes-max-frames`` (default 10800): the 1-hour Shapes
layer alone takes over 6 minutes and 7 GB.

Results (napari 0.9.2, PyQt6 under xvfb, 2 cores shared with other work, so single
timings vary by up to 2x; run with ``--shapes-max-frames 108000``, 25 minutes):

     frames     items       kind  tuple s  build s  MB kept   add s  step ms
       3000     70454    vectors     0.02     0.14       10    0.06      3.6
       3000     70454     shapes     0.02    10.22      219    0.56    179.7
       3000     76474     points     0.01     0.14       12    0.08      4.3
      10800    253757    vectors     0.05     0.18       25    0.06      4.7
      10800    253757     shapes     0.07    34.00      773    1.80    609.0
      10800    275425     points     0.04     0.20       35    0.06      3.9
      36000    845448    vectors     0.24     0.29       73    0.09     12.3
      36000    845448     shapes     0.20   140.29     2468   11.30   3040.4
      36000    917688     points     0.11     0.47      102    0.08      8.3
     108000   2536344    vectors     0.84     1.10      154    0.20     39.9
     108000   2536344     shapes     1.20   372.97     7320   20.01   7564.3
     108000   2753064     points     0.32     0.68      243    0.16     14.8
     108000   2536344  vectors C        -     1.43      154    2.11    584.2
     108000   2753064   points C        -     1.46      277    1.08    282.7
    colouring the 2.75 M points: colour cycle over a feature 1.39 s, explicit colours 0.08 s

Shapes cost ~0.15 ms and ~3 kB per line whatever the size, and a frame step grows with
the number of lines (3 ms per 1000), so the 1-hour skeleton as Shapes is unusable (6 min,
7 GB, 7.6 s per frame step) while Vectors take 1 s, 154 MB and 40 ms: the plugin draws the
skeleton as Vectors and keeps no Shapes variant.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RECORDING = DATA / "sleap_analysis_example" / "predictions.slp"
FPS = 30.0
STEPS = 9  # frame steps timed per layer
HEADER = (f"{'frames':>7} {'items':>9} {'kind':>10} {'tuple s':>8} {'build s':>8} "
          f"{'MB kept':>8} {'add s':>7} {'step ms':>8}")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recording():
    from napari_skelmae.io.sleap import read_slp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_slp(RECORDING)


def tiled(tracks, n_frames: int):
    """The recording repeated to ``n_frames`` rows, as one long video at 30 fps."""
    rows = np.arange(n_frames) % tracks.n_frames
    return tracks.replace(
        positions=tracks.positions[rows],
        confidence=tracks.confidence[rows],
        frame_index=np.arange(n_frames),
        fps=FPS,
    )


def shapes_tuple(tracks):
    """The skeleton as 'line' shapes, with the same features and colours as the vectors."""
    from napari_skelmae.napari.layers import skeleton_segments, tracks_to_layers

    (vec,) = tracks_to_layers(tracks, points=False, video=False)
    seg = skeleton_segments(tracks)
    _, vkw, _ = vec
    kwargs = {
        "shape_type": "line",
        "features": vkw["features"],
        "edge_width": vkw["edge_width"],
        "edge_color": vkw["edge_color"],
        # Shapes take a list cycle only (no {category: colour}); categories appear in order
        "edge_color_cycle": list(vkw["edge_color_cycle"].values()),
        "name": "skeleton (shapes)",
    }
    return np.stack([seg["start"], seg["end"]], axis=1), kwargs, "shapes"


def layer_tuple(tracks, kind: str):
    from napari_skelmae.napari.layers import tracks_to_layers

    if kind == "shapes":
        return shapes_tuple(tracks)
    (made,) = tracks_to_layers(
        tracks, points=kind.startswith("points"), skeleton=kind.startswith("vectors"),
        video=False,
    )
    if kind.endswith(" C"):
        return np.ascontiguousarray(made[0]), made[1], made[2]
    return made


def run_one(n_frames: int, kind: str) -> None:
    """Measure one layer kind at one size (meant to run in its own process)."""
    import napari
    from napari.layers import Layer

    base = recording()
    layer_tuple(tiled(base, 30), kind)  # imports and first-call costs are not the layer's
    tracks = tiled(base, n_frames)
    t0 = time.perf_counter()
    made = layer_tuple(tracks, kind)
    tuple_s = time.perf_counter() - t0
    viewer = napari.Viewer(show=False)
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    layer = Layer.create(*made)
    build = time.perf_counter() - t0
    gc.collect()
    kept = rss_mb() - before
    t0 = time.perf_counter()
    viewer.add_layer(layer)
    add = time.perf_counter() - t0
    steps = []
    for f in np.random.default_rng(0).integers(0, n_frames, STEPS):
        t0 = time.perf_counter()
        viewer.dims.set_current_step(0, int(f))
        steps.append(time.perf_counter() - t0)
    step = statistics.median(steps) * 1000
    shown_tuple = "-" if kind.endswith(" C") else f"{tuple_s:.2f}"
    print(f"{n_frames:>7} {len(made[0]):>9} {kind:>10} {shown_tuple:>8} {build:>8.2f} "
          f"{kept:>8.0f} {add:>7.2f} {step:>8.1f}", flush=True)
    viewer.close()


def bench_point_colours(base, n_frames: int) -> None:
    """Colour cycle over the 'individual' feature vs one explicit colour per point."""
    from napari.layers import Points

    from napari_skelmae.napari.layers import color_cycle, tracks_to_layers

    (pts,) = tracks_to_layers(tiled(base, n_frames), skeleton=False, video=False)
    data, kwargs, _ = pts
    codes = kwargs["features"]["individual"].cat.codes.to_numpy()
    explicit = {k: v for k, v in kwargs.items() if k not in ("face_color", "face_color_cycle")}
    explicit["face_color"] = color_cycle(base.n_individuals)[codes]
    print(f"\npoints layer, {len(data)} points ({n_frames} frames):")
    for label, kw in (("colour cycle over a feature", kwargs), ("explicit colours", explicit)):
        gc.collect()
        t0 = time.perf_counter()
        Points(data, **kw)
        print(f"  {label:<28} {time.perf_counter() - t0:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[3000, 10800, 36000, 108000])
    parser.add_argument("--shapes-max-frames", type=int, default=10800)
    parser.add_argument("--one", nargs=2, metavar=("FRAMES", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(int(args.one[0]), args.one[1])
        return
    base = recording()
    print(f"recording: {base!r}\n\n{HEADER}", flush=True)
    for n in args.frames:
        kinds = ["vectors"] + (["shapes"] if n <= args.shapes_max_frames else []) + ["points"]
        if n == max(args.frames):
            kinds += ["vectors C", "points C"]
        for kind in kinds:
            subprocess.run([sys.executable, __file__, "--one", str(n), kind], check=True)
    bench_point_colours(base, max(args.frames))


if __name__ == "__main__":
    main()
