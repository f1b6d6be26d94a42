"""``skelmae pretrain``: train a masked skeleton model from the command line.

Works the same in one process and under ``torchrun --nproc-per-node N -m
napari_skelmae.cli pretrain ...`` (DistributedDataParallel; only process 0 shows
progress and writes files). Bad input prints one line naming the file and the problem and
exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import SkelmaeError

__all__ = ["add_pretrain_parser", "cmd_pretrain", "parse_settings"]

METHOD_NAMES = ("mamp", "skeleton2vec", "skeletonmae", "msae")


def add_pretrain_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``pretrain`` command to an argparse sub-parser collection."""
    description = "Pretrain a masked skeleton model on pose-tracking files."
    p = subparsers.add_parser("pretrain", help=description, description=description)
    p.add_argument("files", nargs="+", help="tracks files (.slp, .h5, .csv, .nc, .nwb)")
    p.add_argument("--method", default="mamp", choices=METHOD_NAMES, help="default: mamp")
    p.add_argument("--out", required=True, help="model file to write (.skelmae)")
    p.add_argument("--preset", default=None, help="named configuration, e.g. small or paper")
    p.add_argument("--epochs", type=int, default=None, help="passes over the training windows")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=64,
                   help="windows per step over all processes (default 64)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (method default)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of time held out for validation (default 0.1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto",
                   choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--fps", type=float, default=None, help="frame rate of the files")
    p.add_argument("--window-s", type=float, default=None,
                   help="window length in seconds (stride: half of it)")
    p.add_argument("--model-fps", type=float, default=None,
                   help="rate the tracks are resampled to")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--checkpoint-dir", default=None, help="folder for checkpoints")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="write a checkpoint every N steps (and at the end)")
    p.add_argument("--resume", default=None, help="continue from this checkpoint")
    p.add_argument("--num-workers", type=int, default=0, help="data loader processes")
    p.add_argument("--log-every", type=int, default=10, help="steps between progress updates")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model or window option, e.g. --set dim=64, --set reference=window "
                        "(JSON values: --set layer_scale=null)")
    p.set_defaults(func=cmd_pretrain)
    return p


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["dim=64", "encoder=[[16,16,8]]", "center=thorax"]`` -> a dict; values are JSON
    when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SkelmaeError(f"--set needs KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


class _ProgressDisplay:
    """A tqdm bar when tqdm is installed, else one line per update on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        losses = f"loss {p.train_loss:.4g}" if p.train_loss is not None else "loss -"
        if p.val_loss is not None:
            losses += f" val {p.val_loss:.4g}"
        try:
            from tqdm import tqdm
        except ImportError:
            eta = f" eta {p.eta_s:.0f}s" if p.eta_s is not None else ""
            print(f"step {p.step}/{p.total_steps} epoch {p.epoch} {losses} "
                  f"{p.windows_per_s:.0f} windows/s{eta}", file=sys.stderr, flush=True)
            return
        if self.bar is None:
            self.bar = tqdm(total=p.total_steps, unit="step", desc="pretrain", file=sys.stderr)
        self.bar.update(p.step - self.bar.n)
        self.bar.set_postfix_str(f"{losses} {p.windows_per_s:.0f} win/s", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _window(args: argparse.Namespace, fps: float | None,
            settings: dict[str, Any]) -> dict[str, Any] | None:
    """The window setup from --window-s / --model-fps and the WindowConfig keys among the
    --set options (which are removed from ``settings``; the rest are model options)."""
    import dataclasses

    from ..windows import WindowConfig

    keys = {f.name for f in dataclasses.fields(WindowConfig)}
    chosen = {k: settings.pop(k) for k in list(settings) if k in keys}
    if args.window_s is None and args.model_fps is None and not chosen:
        return None
    if fps is None:
        raise SkelmaeError("the frame rate of the tracks is unknown; pass --fps")
    window = WindowConfig.for_fps(fps).to_dict()
    if args.model_fps is not None:
        window["model_fps"] = args.model_fps
    if args.window_s is not None:
        window["window_s"] = args.window_s
        window["stride_s"] = args.window_s / 2
    window.update(chosen)
    return window


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ..io import load_tracks
    from ..training import is_main_process, pretrain

    main_process = is_main_process()
    out = Path(args.out)
    if main_process and out.exists() and out.is_dir():
        raise SkelmaeError(f"--out '{out}' is a folder; give a file name like model.skelmae")
    recordings = [load_tracks(f, fps=args.fps) for f in args.files]
    if recordings[0].fps is None:
        raise SkelmaeError(f"{recordings[0].source_path}: frame rate unknown (the file says "
                           "none and no video gave one); pass --fps")
    settings = parse_settings(args.set)
    window = _window(args, recordings[0].fps, settings)
    cancel = threading.Event()
    previous = _cancel_on_interrupt(cancel)
    display = _ProgressDisplay(main_process)
    try:
        model = pretrain(
            recordings, args.method, preset=args.preset, window=window,
            epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
            lr=args.lr, val_fraction=args.val_fraction, device=args.device,
            precision=args.precision, seed=args.seed, augment=not args.no_augment,
            callbacks=[display], cancel=cancel, checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every, resume=args.resume,
            num_workers=args.num_workers, log_every=args.log_every,
            **settings,
        )
    finally:
        display.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    history = model.history
    if history.get("cancelled"):
        if main_process:
            print(f"skelmae: interrupted at step {history.get('steps')}; {out} not written",
                  file=sys.stderr)
        return 130
    if main_process:
        model.save(out)
        val, trivial = history.get("final_val_loss"), history.get("trivial_val_loss")
        summary = f"val loss {history.get('initial_val_loss'):.4g} -> {val:.4g}" if (
            val is not None and history.get("initial_val_loss") is not None) else "no validation"
        if trivial is not None:
            summary += f" (trivial predictor {trivial:.4g})"
        print(f"wrote {out}: {model.method}, {history.get('steps')} steps on "
              f"{history.get('device')} ({history.get('precision')}), {summary}")
    return 0


def _cancel_on_interrupt(cancel: threading.Event):
    """First Ctrl-C: stop after the current step; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nskelmae: stopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    return signal.signal(signal.SIGINT, handler)
