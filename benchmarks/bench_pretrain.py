"""Pretraining speed of the four methods on this CPU (prints tables; not a test).

For each method at its default config, on the default window (``WindowConfig.for_fps``) of the
fly courtship recording (../shared/data/sleap_analysis_example/predictions.slp), in float32 and
under bfloat16 autocast:

* training windows/s of the real ``pretrain`` loop (batch, augmentation, loss, backward, AdamW,
  EMA update; validation excluded), best and median over the timed steps after a warm-up;
* FLOPs of one step (forward + backward, counted with ``torch.utils.flop_counter``; the
  attention is counted through SDPA's math path because the CPU flash kernel is not counted;
  AdamW's few elementwise FLOPs are left out), the GFLOP/s reached, and that as a fraction of
  this machine's matmul peak for the same precision, measured in the same run with the same
  threads (a square matmul of ``--peak-size``);
* peak memory: the high-water resident set size (``ru_maxrss``) of a fresh process that does
  only that configuration, and its growth from just before ``pretrain`` (so the ~400 MB of
  torch and the data are visible separately). Torch's CPU allocator keeps no statistics, so RSS
  is the honest number.

Each configuration runs in its own process (clean memory high-water, same thread count).
Then the bfloat16 and float32 loss curves of a short real run with the same seed (same data
order, augmentation and masks: only the arithmetic differs) are printed side by side with their
largest relative difference. ``--profile`` adds where the time goes (torch profiler self time
by kind of op) and how fast each matmul shape of the step runs alone.

    .venv/bin/python benchmarks/bench_pretrain.py [--methods mamp msae] [--steps 8]
        [--threads 2] [--curve-steps 150] [--no-curve] [--profile] [--preset paper]
        [--set mamp.decoder_dim=128 skeletonmae.dim=128]

Results (2026-12-01, 2-core AMD EPYC (Zen 4) VM: AVX512-BF16 but no AMX, torch 2.13.0+cpu,
2 threads; matmul peak float32 176, bfloat16 423 GFLOP/s; batch 64 windows of 64 frames x 13
keypoints; best of 6 steps; this VM's timings vary by +-15 % from run to run):

    method        precision  GFLOP/step  windows/s  GFLOP/s  of peak  peak RSS MB
    mamp          float32         29.2        207      94     53.4%      752
    mamp          bfloat16        29.2        328     150     35.3%      657   (40.1 % in a rerun)
    skeleton2vec  float32         55.0         97      83     47.3%     1102
    skeleton2vec  bfloat16        55.0        199     171     40.4%     1020   (42.8 % in a rerun)
    skeletonmae   float32          8.3        523      68     38.3%      733
    skeletonmae   bfloat16         8.3        712      92     21.7%      589
    msae          float32         83.7         80     104     59.2%     1681
    msae          bfloat16        83.7        171     224     52.9%     1031

bfloat16 autocast is 1.6-2.1x faster than float32 (1.4x for SkeletonMAE). MSAE reaches the 50 %
goal in bf16 since its blocks keep their maps channels-last; the others do not at their default
widths. ``--preset paper`` shows the same code at the papers' widths (bf16, best of 4): mamp
54.9 %, skeleton2vec 58.6 %, skeletonmae 43.3 %, msae 71.3 % of the peak. So for all but
SkeletonMAE what holds the defaults back is their size, not the kernels: ``--profile`` shows
attention over ~200 tokens at head width 32 (~160 GFLOP/s), softmax, casts, GELU and norms
taking ~40 % of a MAMP step, and SkeletonMAE's width-64 GIN layers spending more time in
elementwise work than in matmuls. The large linear matmuls run at 310-410 GFLOP/s (75-100 % of
the peak). ``--set`` grows one part of a default (bf16, one run): a 128-wide decoder gives mamp
35 % and skeleton2vec 42 %; skeletonmae reaches 28 % at dim=128 and 38 % at dim=256; 1.4-7.6x
the step time (docs/pretraining.md). Loss curves, 60 steps, same seed: final validation loss
float32 / bfloat16 mamp 0.7306 / 0.7307, skeleton2vec 0.2862 / 0.2861, skeletonmae 0.0663 /
0.0650, msae 0.0251 / 0.0251; training losses within 0.2 % (mamp, skeleton2vec), 2.9 % (msae),
5.4 % (skeletonmae).
SkeletonMAE's held-out loss has a transient at steps 21-30 where bf16's is up to 2.9x float32's
(0.83 against 0.28 at step 27), while the training losses stay within 5.4 %. That phase is as
sensitive to the seed: two float32 runs with seeds 1 and 2 had 0.33 and 1.24 at step 21. Running
its BatchNorms in float32 did not remove it. From step 36 on float32 and bf16 agree within 2 %.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from options import parse_set  # benchmarks/options.py

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sleap_analysis_example" / "predictions.slp"
METHODS = ("mamp", "skeleton2vec", "skeletonmae", "msae")
PRECISIONS = ("float32", "bfloat16")


# ------------------------------------------------------------------------------ helpers
def rss_mb() -> float:
    """Current resident set size (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def matmul_peak(dtype_name: str, size: int, repeat: int = 15) -> float:
    """GFLOP/s of a ``size``-square matmul in ``dtype_name``: the machine's peak.

    Each repeat is timed by wall clock and by process CPU time per thread (which does not
    count time the OS gave to other jobs); the best of either is kept, and main measures
    before and after the runs and keeps the higher."""
    import torch

    dtype = getattr(torch, dtype_name)
    threads = torch.get_num_threads()
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        a @ b
        wall, cpu = time.perf_counter() - w0, (time.process_time() - c0) / threads
        best = min(best, wall, cpu)
    return 2 * size**3 / best / 1e9


def autocast(precision: str):
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")


def count_step_flops(net, x, valid, precision: str) -> float:
    """FLOPs of one loss forward + backward (attention counted through SDPA's math path)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    generator = torch.Generator().manual_seed(0)
    with counter, sdpa_kernel(SDPBackend.MATH):
        with autocast(precision):
            loss = net.loss(x, valid, generator)["loss"]
        loss.backward()
    net.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


# ------------------------------------------------------------------------------- worker
def worker(method: str, precision: str, args: argparse.Namespace) -> dict:
    """One configuration in this process: the real pretrain loop, timed per step."""
    import numpy as np
    import torch

    from napari_skelmae import load_tracks
    from napari_skelmae.training import pretrain
    from napari_skelmae.windows import WindowDataset

    torch.set_num_threads(args.threads)
    tracks = load_tracks(DATA)
    rss_before = rss_mb()
    marks: list[tuple[float, float, bool]] = []  # (wall, process CPU time, is a step report)

    def timer(progress) -> None:
        marks.append((time.perf_counter(), time.process_time(), progress.eta_s is not None))

    warmup = args.warmup
    overrides = args.overrides.get(method, {})
    model = pretrain(tracks, method, max_steps=warmup + args.steps, precision=precision,
                     device="cpu", seed=0, log_every=1, callbacks=[timer],
                     batch_size=args.batch_size, preset=args.preset,
                     **overrides)
    # a step report right after another callback brackets exactly one training step
    steps = [(w1 - w0, c1 - c0) for (w0, c0, _), (w1, c1, is_step) in zip(marks, marks[1:])
             if is_step]
    steps = steps[warmup - 1:] if warmup > 0 else steps
    timed = [wall for wall, _ in steps]
    batch = model.history["batch_size"]
    best, median = min(timed), statistics.median(timed)
    peak_rss = max_rss_mb()

    net = model.net.train()
    data = WindowDataset(tracks, model.window, model.normalisation)
    sample = data.get_batch(np.arange(batch) % len(data))
    flops = count_step_flops(net, sample["x"], sample["valid"], precision)
    out = {
        "method": method, "precision": precision, "threads": torch.get_num_threads(),
        "batch": batch, "n_frames": model.window.n_frames, "n_keypoints": net.spec.n_keypoints,
        "params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "step_best_s": best, "step_median_s": median, "steps_timed": len(timed),
        "step_cpu_best_s": min(cpu for _, cpu in steps),
        "gflop_per_step": flops / 1e9, "rss_before_mb": rss_before, "peak_rss_mb": peak_rss,
        "overrides": overrides,
    }
    if args.profile:
        out["profile"] = profile_step(net, sample["x"], sample["valid"], precision)
    return out


#: profiler op name -> kind, for the time breakdown (self time; anything else is "other")
KINDS = {
    "linear mm": ("aten::mm", "aten::addmm", "aten::matmul"),
    "attention mm": ("aten::bmm", "aten::baddbmm",
                     "aten::_scaled_dot_product_flash_attention_for_cpu",
                     "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
    "conv": ("aten::convolution", "aten::mkldnn_convolution", "aten::convolution_backward",
             "aten::_convolution", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward"),
    "softmax": ("aten::_softmax", "aten::_softmax_backward_data"),
    "gelu/act": ("aten::gelu", "aten::gelu_backward", "aten::leaky_relu",
                 "aten::leaky_relu_backward", "aten::relu", "aten::threshold_backward",
                 "aten::tanh", "aten::tanh_backward"),
    "norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward",
             "aten::native_batch_norm", "aten::native_batch_norm_backward",
             "aten::_batch_norm_impl_index", "aten::batch_norm_backward"),
    "copy/cast": ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous"),
    "sum": ("aten::sum", "aten::mean"),
}


def profile_step(net, x, valid, precision: str, steps: int = 6) -> dict:
    """Where a loss+backward+AdamW step's time goes, and how fast its matmuls run alone.

    Each of ``steps`` steps is profiled on its own and every (op, input shapes) keeps its
    smallest self time over them: on a shared machine that is the closest to a quiet step."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from napari_skelmae.training import _param_groups

    optimizer = torch.optim.AdamW(_param_groups(net, 0.05), lr=1e-4, betas=(0.9, 0.95),
                                  fused=True)
    generator = torch.Generator().manual_seed(0)

    def step():
        with autocast(precision):
            loss = net.loss(x, valid, generator)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    best: dict[tuple[str, str], tuple[float, int]] = {}
    for _ in range(steps):
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            step()
        for event in prof.key_averages(group_by_input_shape=True):
            key = (event.key, str(event.input_shapes))
            seconds = event.self_cpu_time_total / 1e6
            if key not in best or seconds < best[key][0]:
                best[key] = (seconds, event.count)
    kinds: dict[str, float] = {}
    for (name, _), (seconds, _) in best.items():
        kind = next((k for k, names in KINDS.items() if name in names), None)
        if kind is None:
            kind = "optimizer" if "Optimizer" in name or "adamw" in name.lower() else "other"
        kinds[kind] = kinds.get(kind, 0.0) + seconds
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    alone = []
    for (name, shape_text), (seconds, calls) in best.items():
        if name not in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
            continue
        dims = json.loads(shape_text.replace("'", '"'))
        a_shape, b_shape = (dims[1], dims[2]) if name in ("aten::addmm", "aten::baddbmm") \
            else (dims[0], dims[1])
        if not a_shape or not b_shape:
            continue
        a, b = torch.randn(a_shape, dtype=dtype), torch.randn(b_shape, dtype=dtype)
        op = torch.bmm if name in ("aten::bmm", "aten::baddbmm") else torch.mm
        op(a, b)
        fastest = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            op(a, b)
            fastest = min(fastest, time.perf_counter() - t0)
        flops = 2 * a.numel() * b_shape[-1]
        alone.append({"op": name[6:], "a": a_shape, "b": b_shape, "calls": calls,
                      "in_step_s": seconds, "in_step_gflops": flops * calls / seconds / 1e9,
                      "alone_gflops": flops / fastest / 1e9, "alone_s": fastest * calls})
    alone.sort(key=lambda r: -r["in_step_s"])
    return {"self_s_by_kind": kinds, "matmuls": alone}


# ----------------------------------------------------------------------------- curves
def loss_curves(method: str, steps: int, threads: int, batch_size: int,
                preset: str = "default", overrides: dict | None = None) -> dict:
    """Train loss (mean of every 10 steps) and validation loss of a float32 and a bfloat16 run
    with the same seed."""
    import torch

    from napari_skelmae import load_tracks
    from napari_skelmae.training import pretrain

    torch.set_num_threads(threads)
    tracks = load_tracks(DATA)
    runs = {}
    for precision in PRECISIONS:
        train: list[tuple[int, float]] = []

        def log(progress, train=train) -> None:
            if progress.eta_s is not None and progress.train_loss is not None:
                train.append((progress.step, progress.train_loss))

        model = pretrain(tracks, method, max_steps=steps, precision=precision, device="cpu",
                         seed=0, log_every=10, callbacks=[log], batch_size=batch_size,
                         preset=preset, **(overrides or {}))
        h = model.history
        runs[precision] = {
            "train": train,
            "val": [(e["step"], e["val_loss"]) for e in h["epochs"]],
            "wall_s": h["wall_s"], "windows": h["steps"] * h["batch_size"],
            "trivial": h.get("trivial_val_loss"),
        }
    return runs


def rel_diff(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> float:
    pairs = [(x, dict(b)[s]) for s, x in a if s in dict(b) and x is not None]
    return max((abs(x - y) / max(abs(y), 1e-12) for x, y in pairs), default=float("nan"))


# ------------------------------------------------------------------------------- main
def run_worker(method: str, precision: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--_worker", method, precision, "--threads",
           str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--batch-size", str(args.batch_size), "--preset", args.preset, "--set", *args.set] \
        + (["--profile"] if args.profile else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{method}/{precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_profile(r: dict) -> None:
    prof = r["profile"]
    total = sum(prof["self_s_by_kind"].values())
    kinds = ", ".join(f"{k} {v * 1e3:.0f} ms ({v / total:.0%})"
                      for k, v in sorted(prof["self_s_by_kind"].items(), key=lambda kv: -kv[1]))
    print(f"\n{r['method']} / {r['precision']}: profiled step {total * 1e3:.0f} ms (sum of "
          f"each op's quietest self time): {kinds}")
    mm_in_step = sum(m["in_step_s"] for m in prof["matmuls"])
    mm_alone = sum(m["alone_s"] for m in prof["matmuls"])
    print(f"  mm/addmm/bmm: {mm_in_step * 1e3:.0f} ms in the step, {mm_alone * 1e3:.0f} ms "
          "if each ran at its standalone speed; largest:")
    for m in prof["matmuls"][:8]:
        print(f"    {m['op']:>7} {str(m['a']):>16} x {str(m['b']):<16} x{m['calls']:<3d} "
              f"{m['in_step_s'] * 1e3:6.1f} ms, in step {m['in_step_gflops']:4.0f} GFLOP/s, "
              f"alone {m['alone_gflops']:4.0f} GFLOP/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="pretrain's default: 64")
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument("--preset", default="default",
                        help="model preset of every method: default, small, paper (the "
                             "paper-sized models show the kernels at the papers' widths)")
    parser.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                        help="model options over the preset, e.g. mamp.decoder_dim=128: what "
                             "a larger default would reach")
    parser.add_argument("--curve-steps", type=int, default=60,
                        help="steps of each loss-curve run (the docstring's figures: 300)")
    parser.add_argument("--curve-methods", nargs="+", default=None, choices=METHODS,
                        help="default: --methods")
    parser.add_argument("--no-curve", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.overrides = parse_set(args.set)
    if args._worker:
        print(json.dumps(worker(*args._worker, args)))
        return

    import torch

    sys.stdout.reconfigure(line_buffering=True)  # tables appear as they are measured
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    peaks = {p: matmul_peak(p, args.peak_size) for p in args.precisions}
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"matmul peak ({args.peak_size}^3): "
          + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peaks.items()))
    results = [run_worker(m, p, args) for m in args.methods for p in args.precisions]
    after = {p: matmul_peak(p, args.peak_size) for p in args.precisions}
    print("again after the runs: " + ", ".join(f"{p} {v:.0f}" for p, v in after.items())
          + " GFLOP/s; the higher is used")
    peaks = {p: max(peaks[p], after[p]) for p in peaks}

    overrides = "; ".join(f"{r['method']} {r['overrides']}" for r in results if r["overrides"])
    print(f"\npreset {args.preset!r}" + (f" with {overrides}" if overrides else "")
          + f"; batch {results[0]['batch']} windows of {results[0]['n_frames']} frames x "
          f"{results[0]['n_keypoints']} keypoints; best (median) of {args.steps} steps")
    print("'of peak' = GFLOP/s by wall time / the matmul peak; 'CPU' = the same from the "
          "step's process CPU time against the peak per thread (robust to other jobs on the "
          "machine; with several threads OpenMP's spin-waits count as CPU time)")
    header = (f"{'method':<13} {'precision':<9} {'params':>8} {'GFLOP/step':>10} "
              f"{'step ms':>15} {'windows/s':>15} {'GFLOP/s':>8} {'of peak':>8} {'CPU':>6} "
              f"{'peak RSS MB':>12} {'growth':>7}")
    print(header)
    for r in results:
        step = f"{r['step_best_s'] * 1e3:.0f} ({r['step_median_s'] * 1e3:.0f})"
        rate = f"{r['batch'] / r['step_best_s']:.0f} ({r['batch'] / r['step_median_s']:.0f})"
        gflops = r["gflop_per_step"] / r["step_best_s"]
        per_thread = peaks[r["precision"]] / r["threads"]
        cpu_fraction = r["gflop_per_step"] / r["step_cpu_best_s"] / per_thread
        print(f"{r['method']:<13} {r['precision']:<9} {r['params'] / 1e6:>7.2f}M "
              f"{r['gflop_per_step']:>10.2f} {step:>15} {rate:>15} {gflops:>8.1f} "
              f"{gflops / peaks[r['precision']]:>8.1%} {cpu_fraction:>6.1%} "
              f"{r['peak_rss_mb']:>12.0f} {r['peak_rss_mb'] - r['rss_before_mb']:>7.0f}")
    if args.profile:
        for r in results:
            print_profile(r)

    if not args.no_curve and set(PRECISIONS) <= set(args.precisions):
        print(f"\nloss curves, {args.curve_steps} steps, seed 0, float32 vs bfloat16 autocast "
              "(train: mean of the last 10 steps; val: held-out loss after each epoch)")
        for method in args.curve_methods or args.methods:
            runs = loss_curves(method, args.curve_steps, args.threads, args.batch_size,
                               args.preset, args.overrides.get(method))
            f32, bf16 = runs["float32"], runs["bfloat16"]
            marks = sorted({s for s, _ in f32["train"]})
            picks = sorted({marks[0], marks[len(marks) // 4], marks[len(marks) // 2], marks[-1]})
            t32, t16 = dict(f32["train"]), dict(bf16["train"])
            shown = ", ".join(f"step {s}: {t32[s]:.4f} / {t16[s]:.4f}" for s in picks)
            print(f"{method:<13} train f32/bf16 {shown}")
            print(f"{'':<13} final val {f32['val'][-1][1]:.4f} / {bf16['val'][-1][1]:.4f}"
                  + (f" (trivial {f32['trivial']:.4f})" if f32["trivial"] is not None else "")
                  + f"; max rel. diff train {rel_diff(bf16['train'], f32['train']):.1%}, "
                  f"val {rel_diff(bf16['val'], f32['val']):.1%}; whole run incl. validation "
                  f"{f32['windows'] / f32['wall_s']:.0f} / {bf16['windows'] / bf16['wall_s']:.0f}"
                  " windows/s")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
