"""Self-supervised pretraining of a masked skeleton model on pose tracks.

``pretrain(tracks, method)`` cuts the recordings into egocentric windows, holds out blocks of
time for validation, and trains with AdamW under a per-step linear warm-up + cosine schedule
(MAE / MAMP). Everything that can be wrong with the input is checked before the first step.
Runs are reproducible from a seed: the data order comes from the seed and the epoch, every
other random number (augmentation, masking, drop-path) from one generator whose state is
checkpointed, so a resumed run ends with exactly the weights of an uninterrupted one (same
device and precision). Launched by ``torchrun`` it trains with DistributedDataParallel.
See docs/pretraining.md.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .augment import Augment, symmetry_pairs
from .errors import SkelmaeError
from .model import (
    CHECKPOINT_KEY,
    METADATA_KEY,
    TRAINER_PREFIX,
    SkeletonModel,
    network_tensors,
    read_safetensors,
    write_safetensors,
)
from .models import MaskedSkeletonModel, ModelSpec, build_model, model_class, resolve_config
from .tracks import PoseTracks
from .windows import WindowConfig, WindowDataset, split_train_val

__all__ = [
    "METHOD_DEFAULTS",
    "Progress",
    "is_main_process",
    "pretrain",
    "resolve_device",
    "resolve_precision",
]

logger = logging.getLogger(__name__)

#: optimiser defaults per method, from the papers' code where they say (docs/pretraining.md):
#: peak lr, final lr as a fraction of it, gradient-norm clipping (None: none)
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "mamp": dict(lr=1e-3, min_lr_ratio=0.5, clip_grad=None),  # 1e-3 -> 5e-4
    "skeleton2vec": dict(lr=5e-4, min_lr_ratio=0.02, clip_grad=3.0),  # 5e-4 -> 1e-5
    "skeletonmae": dict(lr=1e-3, min_lr_ratio=0.01, clip_grad=None),
    "msae": dict(lr=1e-3, min_lr_ratio=0.01, clip_grad=None),
}
#: optimiser steps of a run when neither ``epochs`` nor ``max_steps`` is given
DEFAULT_STEPS = 2000
#: offsets of the seeds of the validation masks and of the per-process step generators
VAL_SEED_OFFSET = 1_000_003
STEP_SEED_OFFSET = 7919
#: parameters named like this are tables (positions, keypoints, mask tokens): no weight decay
NO_DECAY_NAMES = ("pos_embed", "keypoint_embed", "mask_token", "mask_embedding", "attn_bias")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: windows at most used to estimate the mean pose of the trivial baseline
MEAN_POSE_WINDOWS = 4096


@dataclasses.dataclass
class Progress:
    """What a callback sees, after every ``log_every`` steps and at every validation."""

    step: int
    total_steps: int
    epoch: int
    train_loss: float | None  # mean over the steps since the last report (all processes)
    val_loss: float | None  # the latest validation loss; None until one was computed
    lr: float
    windows_per_s: float
    eta_s: float | None
    extra: dict[str, float] = dataclasses.field(default_factory=dict)


Callback = Callable[[Progress], Any]


# ------------------------------------------------------------------------------ devices
def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA (this process's GPU under torchrun), then Apple MPS, then CPU."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise SkelmaeError(
            f"device must be 'auto', 'cpu', 'cuda', 'mps' or 'cuda:N', got {device!r}"
        )
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise SkelmaeError(
            f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise SkelmaeError("device 'cuda' asked for, but this torch sees no CUDA GPU")
        if resolved.index is None:
            resolved = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise SkelmaeError("device 'mps' asked for, but Apple MPS is not available")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise SkelmaeError(f"unsupported device {device!r}; use auto, cpu, cuda or mps")
    return resolved


def cpu_has_bf16() -> bool:
    """Whether the CPU has bfloat16 arithmetic units (AVX512-BF16 or AMX-BF16): only then is
    bf16 autocast on the CPU faster than float32 instead of emulated."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: no cheap way to tell, stay in float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"``: bfloat16 autocast on CUDA when supported (else float16 with loss scaling),
    bfloat16 on a CPU with bf16 units, float32 otherwise (and on MPS)."""
    if precision not in PRECISIONS:
        raise SkelmaeError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    if precision != "auto":
        if precision == "float16" and device.type == "cpu":
            raise SkelmaeError("float16 training is for GPUs; use bfloat16 or float32 on the CPU")
        return precision
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.type == "cpu" and cpu_has_bf16():
        return "bfloat16"
    return "float32"


# ------------------------------------------------------------------------- distributed
@dataclasses.dataclass
class _Dist:
    """This process's place in a torchrun launch (world 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world,
                   int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device) -> None:
        """Join the torchrun process group (gloo on CPU, nccl on CUDA), once per process.

        The group is destroyed when the process exits, not when ``pretrain`` returns: gloo
        cannot build the default group a second time in one process (a second ``pretrain``
        in the same worker would hang), so later calls reuse it.
        """
        import torch.distributed as dist

        self.device = device if device.type == "cuda" else torch.device("cpu")
        if not self.active or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_destroy_process_group)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean over processes of a float tensor (identity without torchrun)."""
        if not self.active:
            return values
        import torch.distributed as dist

        out = values.detach().to(self.device, torch.float64).clone()
        dist.all_reduce(out)
        return (out / self.world).cpu()

    def any(self, flag: bool) -> bool:
        if not self.active:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sync_buffers(self, module: nn.Module) -> None:
        """Process 0's buffers (BatchNorm running statistics) everywhere: DDP only sends them
        at the start of a forward, so after a step every process holds its own."""
        if not self.active:
            return
        import torch.distributed as dist

        for buffer in module.buffers():
            if self.device.type == buffer.device.type:
                dist.broadcast(buffer, src=0)
            else:
                moved = buffer.to(self.device)
                dist.broadcast(moved, src=0)
                buffer.copy_(moved)

    def gather(self, state: torch.Tensor) -> list[torch.Tensor]:
        """Every process's copy of a uint8 tensor of equal size (RNG states), on the CPU."""
        if not self.active:
            return [state]
        import torch.distributed as dist

        local = state.to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local)
        return [p.cpu() for p in parts]


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """False in the processes of a torchrun launch other than rank 0 (which alone writes)."""
    return int(os.environ.get("RANK", "0")) == 0


class _LossModule(nn.Module):
    """Routes DDP's forward to ``net.loss`` so gradients are synchronised for it."""

    def __init__(self, net: MaskedSkeletonModel):
        super().__init__()
        self.net = net

    def forward(self, x, valid, generator):
        return self.net.loss(x, valid, generator)


# --------------------------------------------------------------------------- the plan
@dataclasses.dataclass
class _Plan:
    """Every setting that determines the result (stored in checkpoints; a resumed run must
    have the same plan)."""

    method: str
    preset: str | None
    config: dict[str, Any]
    window: dict[str, Any]
    normalisation: dict[str, Any]
    batch_size: int  # per process
    world_size: int
    steps_per_epoch: int
    epochs: int
    total_steps: int
    warmup_steps: int
    lr: float
    min_lr: float
    weight_decay: float
    clip_grad: float | None
    augment: dict[str, Any] | None
    val_fraction: float
    seed: int
    n_train_windows: int
    n_val_windows: int

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based): linear warm-up to ``lr``, then
        a half-cycle cosine down to ``min_lr`` at the last step (MAE's lr_sched)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------- checks
def _positive_int(value: Any, name: str, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SkelmaeError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _fraction(value: Any, name: str, low: float, high: float, high_open: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and low <= value and (value < high if high_open else value <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise SkelmaeError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")
    return float(value)


def _as_recordings(tracks: PoseTracks | Sequence[PoseTracks]) -> list[PoseTracks]:
    recordings = [tracks] if isinstance(tracks, PoseTracks) else list(tracks)
    if not recordings:
        raise SkelmaeError("pretrain needs at least one recording")
    for i, t in enumerate(recordings):
        if not isinstance(t, PoseTracks):
            raise SkelmaeError(f"recording {i} is a {type(t).__name__}, not PoseTracks")
        if t.n_frames == 0 or t.missing.all():
            raise SkelmaeError(f"{t.source_path or f'recording {i}'}: no tracked points to "
                               "train on")
    return recordings


def _resolve_window(
    window: WindowConfig | Mapping[str, Any] | None, first: PoseTracks, patch: int
) -> WindowConfig:
    """The window setup; its length is made a whole number of the model's temporal patches."""
    if window is None:
        if first.fps is None:
            raise SkelmaeError(
                f"{first.source_path or 'the tracks'}: frame rate unknown; pass fps when "
                "loading, e.g. load_tracks(path, fps=30)"
            )
        config = WindowConfig.for_fps(first.fps, temporal_patch=patch)
    elif isinstance(window, WindowConfig):
        config = window
    elif isinstance(window, Mapping):
        window = dict(window)
        window.setdefault("temporal_patch", patch)
        config = WindowConfig.from_dict(window)
    else:
        raise SkelmaeError(f"window must be a WindowConfig, a dict or None, got {window!r}")
    if config.n_frames % patch:
        logger.info("pretrain: window temporal_patch %d -> %d (the model's patch)",
                    config.temporal_patch, patch)
        config = dataclasses.replace(config, temporal_patch=patch)
    return config


def _resolve_augment(augment: bool | Augment | Mapping[str, Any] | None) -> Augment | None:
    if augment is True:
        return Augment()
    if augment is False or augment is None:
        return None
    if isinstance(augment, Augment):
        return augment
    if isinstance(augment, Mapping):
        return Augment.from_dict(dict(augment))
    raise SkelmaeError(f"augment must be True, False, an Augment or a dict, got {augment!r}")


def _no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, norm gains, LayerScale and other vectors, and embedding / position tables."""
    return param.ndim <= 1 or any(key in name for key in NO_DECAY_NAMES)


def _param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        if p.requires_grad:
            (no_decay if _no_decay(name, p) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# ------------------------------------------------------------------- trivial baselines
def _mamp_trivial(net, x, valid, generator, mean_pose):
    """Predict 0 for every hidden token: the mean of MAMP's per-token normalised motion."""
    from .models.mamp import motion_target

    masked = net.mask(x, valid, generator)
    target, defined = motion_target(x, valid, net.config.patch)
    weight = (defined & masked.unsqueeze(-1)).float()
    return (target**2 * weight).sum() / weight.sum().clamp_min(1.0)


def _msae_trivial(net, x, valid, generator, mean_pose):
    """Predict the mean pose (each keypoint's mean egocentric position) for hidden entries."""
    from .masking import two_stage_mask

    c = net.config
    b, t, v, _ = x.shape
    hidden, _ = two_stage_mask(b, t, v, c.frame_mask_ratio, c.joint_mask_ratio, valid=valid,
                               generator=generator)
    hidden = hidden | ~valid
    err = ((mean_pose - x.float()) ** 2).mean(-1)
    on_hidden, on_visible = (valid & hidden).float(), (valid & ~hidden).float()
    w = c.visible_weight
    return ((err * (on_hidden + w * on_visible)).sum()
            / (on_hidden.sum() + w * on_visible.sum()).clamp_min(1.0))


def _skeletonmae_trivial(net, x, valid, generator, mean_pose):
    """The mean pose, repeated over each node's P frames, as every hidden node's output."""
    from .models.blocks import patchify, token_validity
    from .models.skeletonmae import scaled_cosine_error

    p, c = net.config.patch, net.spec.n_channels
    hidden = net.mask(valid, generator)
    target = patchify(torch.where(valid.unsqueeze(-1), x, torch.zeros_like(x)).float(), p)
    weight = patchify(valid.unsqueeze(-1).expand(*valid.shape, c).float(), p)
    selected = hidden & token_validity(valid, p)
    pred = patchify(mean_pose.expand(x.shape).contiguous(), p)
    sce = scaled_cosine_error(pred, target, weight, selected, net.config.gamma)
    entry_weight = weight * selected.unsqueeze(-1)
    mse = (((pred - target) ** 2) * entry_weight).sum() / entry_weight.sum().clamp_min(1.0)
    return sce + net.config.coord_weight * mse


def _skeleton2vec_trivial(net, x, valid, generator, mean_target):
    """The teacher's mean target vector (over training tokens) for every hidden token."""
    from .models.blocks import token_validity

    masked = net.mask(x, valid, generator)  # first, as in the loss: the same masks
    target = net.targets(x, valid)
    weight = (masked & token_validity(valid, net.config.patch)).float()
    per_token = ((mean_target - target) ** 2).mean(dim=-1)
    return (per_token * weight).sum() / weight.sum().clamp_min(1.0)


#: method -> loss of the best constant prediction under the method's own loss and masks
TRIVIAL_BASELINES: dict[str, Callable[..., torch.Tensor]] = {
    "mamp": _mamp_trivial,
    "msae": _msae_trivial,
    "skeletonmae": _skeletonmae_trivial,
    "skeleton2vec": _skeleton2vec_trivial,
}
TRIVIAL_DESCRIPTIONS = {
    "mamp": "loss of predicting 0 (each token's mean normalised motion) for every hidden token",
    "msae": "loss of predicting the training windows' mean pose for every hidden entry",
    "skeletonmae": "loss of predicting the training windows' mean pose for every hidden node",
    "skeleton2vec": "loss of predicting the final teacher's mean target (over training tokens) "
                    "for every hidden token, at the end of the run",
}
#: methods whose targets move with training (an EMA teacher): their trivial loss is computed
#: at the end of the run, against the final teacher
MOVING_TARGETS = ("skeleton2vec",)


# ------------------------------------------------------------------------ the trainer
class _Trainer:
    """One run: data, network, optimiser, schedule, RNG and bookkeeping."""

    def __init__(self, plan: _Plan, net: MaskedSkeletonModel, train: WindowDataset,
                 val: WindowDataset, augment: Augment | None, dist: _Dist,
                 device: torch.device, precision: str, callbacks: Sequence[Callback],
                 cancel: Any, checkpoint_dir: Path | None, checkpoint_every: int | None,
                 num_workers: int, log_every: int):
        self.plan, self.net, self.train_set, self.val_set = plan, net, train, val
        self.augment, self.dist, self.device, self.precision = augment, dist, device, precision
        self.callbacks, self.cancel = list(callbacks), cancel
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, checkpoint_every
        self.num_workers, self.log_every = num_workers, log_every
        self.pairs = symmetry_pairs(train.keypoint_names, train.metadata)
        # the fused kernel: one pass per tensor instead of a dozen ops (~1 % of a CPU step)
        self.optimizer = torch.optim.AdamW(
            _param_groups(net, plan.weight_decay), lr=plan.lr, betas=(0.9, 0.95),
            fused=device.type in ("cpu", "cuda") or None,
        )
        self.scaler = torch.amp.GradScaler(device.type) if precision == "float16" else None
        self.generator = torch.Generator(device=device).manual_seed(
            plan.seed + STEP_SEED_OFFSET * (dist.rank + 1)
        )
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.history: dict[str, Any] = {"epochs": [], "cancelled": False}
        self._interval = _Accumulator()  # since the last report
        self._epoch_acc = _Accumulator()  # since the start of the epoch
        self._val_loss: float | None = None
        self._started = self._last_report = time.perf_counter()
        self._steps_timed = 0
        self._window_rate = 0.0
        self.module: nn.Module = net

    # ---- setup ---------------------------------------------------------------------
    def wrap_for_ddp(self) -> None:
        if not self.dist.active:
            return
        from torch.nn.parallel import DistributedDataParallel

        unused = self._unused_parameters()
        if unused:
            logger.info("pretrain: parameters without gradient in a step: %s", unused[:5])
        self.module = DistributedDataParallel(
            _LossModule(self.net),
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=bool(unused),
        )

    def _unused_parameters(self) -> list[str]:
        """Trainable parameters a loss does not reach (DDP must then search for them each
        step), found on a throw-away copy so the run's state is untouched."""
        probe = copy.deepcopy(self.net).train()
        batch = self.train_set.get_batch(np.arange(min(len(self.train_set), 4)))
        x, valid = batch["x"].to(self.device), batch["valid"].to(self.device)
        probe.loss(x, valid, torch.Generator(device=self.device).manual_seed(0))["loss"].backward()
        return [n for n, p in probe.named_parameters() if p.requires_grad and p.grad is None]

    # ---- data ----------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This process's batches of epoch ``epoch``: a permutation from (seed, epoch), split
        across processes by DistributedSampler, cut into whole batches."""
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(self.train_set, num_replicas=self.dist.world,
                                     rank=self.dist.rank, shuffle=True, seed=self.plan.seed,
                                     drop_last=True)
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64)
        b = self.plan.batch_size
        return [order[i * b: (i + 1) * b] for i in range(self.plan.steps_per_epoch)]

    def iterate(self, batches: list[np.ndarray]):
        if self.num_workers == 0:
            for idx in batches:
                yield self.train_set.get_batch(idx)
            return
        from torch.utils.data import DataLoader

        yield from DataLoader(_BatchList(self.train_set, batches), batch_size=None,
                              num_workers=self.num_workers,
                              pin_memory=self.device.type == "cuda")

    # ---- the loop ------------------------------------------------------------------
    def autocast(self):
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def cancelled(self) -> bool:
        if self.cancel is None:
            flag = False
        elif isinstance(self.cancel, threading.Event):
            flag = self.cancel.is_set()
        else:
            flag = bool(self.cancel())
        return self.dist.any(flag)

    def run(self) -> None:
        plan = self.plan
        self.net.train()
        while self.step < plan.total_steps:
            batches = self.epoch_batches(self.epoch)
            start = self.batch_in_epoch
            for idx, batch in enumerate(self.iterate(batches[start:]), start=start):
                if self.cancelled():
                    self.history["cancelled"] = True
                    logger.info("pretrain: cancelled before step %d", self.step + 1)
                    return
                self.train_step(batch)
                self.batch_in_epoch = idx + 1
                last = self.step == plan.total_steps
                epoch_done = self.batch_in_epoch == len(batches)
                if self.step % self.log_every == 0 or last or epoch_done:
                    self.report()
                if epoch_done:
                    self.end_epoch()
                if self.checkpoint_every and self.step % self.checkpoint_every == 0 and not last:
                    self.save_checkpoint()
                if last:
                    break
            if self.batch_in_epoch == len(batches):
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        if not self.history["epochs"] or self.history["epochs"][-1]["step"] != self.step:
            self.end_epoch(partial=True)
        if self.checkpoint_dir is not None:
            self.save_checkpoint()

    def train_step(self, batch: dict[str, torch.Tensor]) -> None:
        lr = self.plan.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = batch["x"].to(self.device, non_blocking=True)
        valid = batch["valid"].to(self.device, non_blocking=True)
        if self.augment is not None:
            x, valid = self.augment(x, valid, self.pairs, self.generator)
        with self.autocast():
            out = self.module(x, valid, self.generator) if self.dist.active else self.net.loss(
                x, valid, self.generator)
        loss = out["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.plan.clip_grad:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.plan.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step += 1
        self.net.after_step(self.step, self.plan.total_steps)
        scalars = {k: v.detach().float() for k, v in out.items() if v.ndim == 0}
        self._interval.add(scalars, x.shape[0])
        self._epoch_acc.add(scalars, x.shape[0])
        self._steps_timed += 1

    # ---- reporting -----------------------------------------------------------------
    def report(self, val_loss: float | None = None) -> None:
        scalars = self._interval.means(self.dist)
        windows = self._interval.windows * self.dist.world
        self._interval = _Accumulator()
        train_loss = scalars.pop("loss", None)
        if train_loss is not None and not math.isfinite(train_loss):
            raise SkelmaeError(
                f"the training loss became {train_loss} at step {self.step}; lower the learning "
                "rate (lr) or train in float32 (precision='float32')"
            )
        now = time.perf_counter()
        elapsed = now - self._started
        rate = self._steps_timed / elapsed if elapsed > 0 else 0.0
        self._window_rate = windows / max(now - self._last_report, 1e-9)
        self._last_report = now
        progress = Progress(
            step=self.step, total_steps=self.plan.total_steps, epoch=self.epoch,
            train_loss=train_loss, val_loss=val_loss if val_loss is not None else self._val_loss,
            lr=self.plan.lr_at(max(self.step - 1, 0)), windows_per_s=self._window_rate,
            eta_s=(self.plan.total_steps - self.step) / rate if rate > 0 else None,
            extra=scalars,
        )
        if self.dist.main:
            for callback in self.callbacks:
                callback(progress)

    def validate(self) -> float | None:
        """Validation loss with the same masks every time (a freshly seeded generator), no
        augmentation, eval mode; identical in every process."""
        self.dist.sync_buffers(self.net)
        if not len(self.val_set):
            return None
        self.net.eval()
        generator = torch.Generator(device=self.device).manual_seed(
            self.plan.seed + VAL_SEED_OFFSET
        )
        total, count = 0.0, 0
        with torch.no_grad(), self.autocast():
            for idx in _chunks(len(self.val_set), self.plan.batch_size):
                batch = self.val_set.get_batch(idx)
                x, valid = batch["x"].to(self.device), batch["valid"].to(self.device)
                total += float(self.net.loss(x, valid, generator)["loss"].float()) * len(idx)
                count += len(idx)
        self.net.train()
        return total / count

    def trivial_val_loss(self) -> float | None:
        """The method's trivial predictor on the validation windows, same masks as
        :meth:`validate`."""
        baseline = TRIVIAL_BASELINES.get(self.plan.method)
        if baseline is None or not len(self.val_set):
            return None
        if self.plan.method == "skeleton2vec":
            mean_pose = _mean_target(self.net, self.train_set, self.device)
        else:
            mean_pose = _mean_pose(self.train_set).to(self.device)
        generator = torch.Generator(device=self.device).manual_seed(
            self.plan.seed + VAL_SEED_OFFSET
        )
        total, count = 0.0, 0
        with torch.no_grad():
            for idx in _chunks(len(self.val_set), self.plan.batch_size):
                batch = self.val_set.get_batch(idx)
                x, valid = batch["x"].to(self.device), batch["valid"].to(self.device)
                total += float(baseline(self.net, x, valid, generator, mean_pose)) * len(idx)
                count += len(idx)
        return total / count

    def start_history(self, device_name: str) -> None:
        plan = self.plan
        initial = self.validate()
        self._val_loss = initial
        trivial = None if plan.method in MOVING_TARGETS else self.trivial_val_loss()
        self.history.update(
            method=plan.method, device=device_name, precision=self.precision, seed=plan.seed,
            world_size=plan.world_size, batch_size=plan.batch_size * plan.world_size,
            total_steps=plan.total_steps, steps_per_epoch=plan.steps_per_epoch,
            n_train_windows=plan.n_train_windows, n_val_windows=plan.n_val_windows,
            lr=plan.lr, min_lr=plan.min_lr, warmup_steps=plan.warmup_steps,
            weight_decay=plan.weight_decay, clip_grad=plan.clip_grad, augment=plan.augment,
            initial_val_loss=initial, trivial_val_loss=trivial,
            trivial_val_loss_is=TRIVIAL_DESCRIPTIONS.get(plan.method),
        )
        self.history["epochs"].append(
            {"epoch": 0, "step": 0, "train_loss": None, "val_loss": initial}
        )

    def end_epoch(self, partial: bool = False) -> None:
        """Record the epoch (train loss mean, validation loss) and tell the callbacks."""
        scalars = self._epoch_acc.means(self.dist)
        self._epoch_acc = _Accumulator()
        self._val_loss = self.validate()
        done = self.epoch + (self.batch_in_epoch / self.plan.steps_per_epoch if partial else 1)
        self.history["epochs"].append({
            "epoch": round(done, 4),
            "step": self.step,
            "train_loss": scalars.pop("loss", None),
            "val_loss": self._val_loss,
            **scalars,
        })
        progress = Progress(
            step=self.step, total_steps=self.plan.total_steps, epoch=self.epoch + 1,
            train_loss=self.history["epochs"][-1]["train_loss"], val_loss=self._val_loss,
            lr=self.plan.lr_at(max(self.step - 1, 0)), windows_per_s=self._window_rate,
            eta_s=None, extra=scalars,
        )
        if self.dist.main:
            for callback in self.callbacks:
                callback(progress)

    def finish_history(self) -> dict[str, Any]:
        self.dist.sync_buffers(self.net)
        self.history["steps"] = self.step
        self.history["final_val_loss"] = self._val_loss
        if self.plan.method in MOVING_TARGETS:
            self.net.eval()
            self.history["trivial_val_loss"] = self.trivial_val_loss()
        self.history["wall_s"] = round(time.perf_counter() - self._started, 3)
        return self.history

    # ---- checkpoints ---------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        """``checkpoint-<step>.skelmae`` in the checkpoint folder, by process 0 only: the model
        file plus optimiser, scaler, position and every process's RNG states."""
        self.dist.sync_buffers(self.net)
        step_states = self.dist.gather(self.generator.get_state())
        torch_states = self.dist.gather(torch.get_rng_state())
        if not self.dist.main or self.checkpoint_dir is None:
            return None
        tensors = network_tensors(self.net)
        for i, state in self.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                tensors[f"{TRAINER_PREFIX}optimizer.{i}.{key}"] = _tensor(value)
        for rank, (s, t) in enumerate(zip(step_states, torch_states)):
            tensors[f"{TRAINER_PREFIX}rng.step.{rank}"] = s.clone()
            tensors[f"{TRAINER_PREFIX}rng.torch.{rank}"] = t.clone()
        if self.device.type == "cuda":
            tensors[f"{TRAINER_PREFIX}rng.cuda"] = torch.cuda.get_rng_state(self.device)
        trainer = {
            "plan": dataclasses.asdict(self.plan),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "val_loss": self._val_loss,
            "epoch_accumulator": self._epoch_acc.to_json(),
            "interval_accumulator": self._interval.to_json(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "precision": self.precision,
            "device": str(self.device),
        }
        model = _skeleton_model(self.net, self.plan, self.train_set, dict(self.history,
                                                                        steps=self.step))
        path = self.checkpoint_dir / f"checkpoint-{self.step:08d}.skelmae"
        write_safetensors(path, tensors, {METADATA_KEY: model.describe(), CHECKPOINT_KEY: trainer})
        logger.info("pretrain: checkpoint %s", path)
        return path

    def load_checkpoint(self, tensors: dict[str, torch.Tensor], trainer: dict[str, Any],
                        history: dict[str, Any], path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint` of the same plan."""
        state = {k: v for k, v in tensors.items() if not k.startswith(TRAINER_PREFIX)}
        self.net.load_state_dict(state)
        self.net.to(self.device)
        optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"{TRAINER_PREFIX}optimizer."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, name = key[len(prefix):].split(".", 1)
                optimizer_state.setdefault(int(index), {})[name] = value
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict({"state": optimizer_state, "param_groups": groups})
        rank = self.dist.rank
        try:
            self.generator.set_state(tensors[f"{TRAINER_PREFIX}rng.step.{rank}"])
            torch.set_rng_state(tensors[f"{TRAINER_PREFIX}rng.torch.{rank}"])
        except KeyError:
            raise SkelmaeError(f"'{path}': checkpoint lacks the RNG state of process {rank}") \
                from None
        if self.device.type == "cuda" and f"{TRAINER_PREFIX}rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors[f"{TRAINER_PREFIX}rng.cuda"], self.device)
        if self.scaler is not None and trainer.get("scaler"):
            self.scaler.load_state_dict(trainer["scaler"])
        self.step = int(trainer["step"])
        self.epoch = int(trainer["epoch"])
        self.batch_in_epoch = int(trainer["batch_in_epoch"])
        if self.batch_in_epoch >= self.plan.steps_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self._val_loss = trainer.get("val_loss")
        self._epoch_acc = _Accumulator.from_json(trainer.get("epoch_accumulator"))
        self._interval = _Accumulator.from_json(trainer.get("interval_accumulator"))
        self.history = dict(history)
        self.history["resumed_from"] = [*history.get("resumed_from", []),
                                        {"file": str(path), "step": self.step}]


class _Accumulator:
    """Window-weighted sums of the loss scalars (kept on the device: no sync per step)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.windows = 0

    def add(self, scalars: dict[str, torch.Tensor], windows: int) -> None:
        for k, v in scalars.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * windows
        self.windows += windows

    def means(self, dist: _Dist) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        local = torch.stack([self.sums[k].double().cpu() for k in keys]) / self.windows
        return dict(zip(keys, dist.mean(local).tolist()))

    def to_json(self) -> dict[str, Any]:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "windows": self.windows}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> _Accumulator:
        out = cls()
        if d:
            out.sums = {k: torch.tensor(v, dtype=torch.float64) for k, v in d["sums"].items()}
            out.windows = int(d["windows"])
        return out


class _BatchList(torch.utils.data.Dataset):
    """Precomputed batches for a DataLoader with workers (order fixed by the plan)."""

    def __init__(self, dataset: WindowDataset, batches: list[np.ndarray]):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset.get_batch(self.batches[i])


def _chunks(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(a, min(a + size, n)) for a in range(0, n, size)]


def _tensor(value: Any) -> torch.Tensor:
    t = value if torch.is_tensor(value) else torch.tensor(value)
    return t.detach().cpu().contiguous().clone()


def _mean_pose(dataset: WindowDataset) -> torch.Tensor:
    """Each keypoint's mean egocentric position over (up to MEAN_POSE_WINDOWS) windows."""
    n = len(dataset)
    idx = np.unique(np.linspace(0, n - 1, min(n, MEAN_POSE_WINDOWS)).round().astype(np.int64))
    total = torch.zeros(dataset.n_keypoints, dataset.n_channels, dtype=torch.float64)
    count = torch.zeros(dataset.n_keypoints, 1, dtype=torch.float64)
    for chunk in np.array_split(idx, max(1, len(idx) // 512)):
        batch = dataset.get_batch(chunk)
        w = batch["valid"].unsqueeze(-1).double()
        total += (batch["x"].double() * w).sum((0, 1))
        count += w.sum((0, 1))
    return (total / count.clamp_min(1.0)).float()


def _mean_target(net: MaskedSkeletonModel, dataset: WindowDataset, device: torch.device,
                 windows: int = 512) -> torch.Tensor:
    """Skeleton2vec's mean teacher target (D,) over the valid tokens of up to ``windows``
    evenly spaced training windows."""
    from .models.blocks import token_validity

    n = len(dataset)
    idx = np.unique(np.linspace(0, n - 1, min(n, windows)).round().astype(np.int64))
    total = torch.zeros(net.config.dim, dtype=torch.float64, device=device)
    count = 0
    with torch.no_grad():
        for chunk in np.array_split(idx, max(1, len(idx) // 128)):
            batch = dataset.get_batch(chunk)
            x, valid = batch["x"].to(device), batch["valid"].to(device)
            target = net.targets(x, valid)
            ok = token_validity(valid, net.config.patch)
            total += target[ok].double().sum(0)
            count += int(ok.sum())
    return (total / max(count, 1)).float()


def _skeleton_model(net: MaskedSkeletonModel, plan: _Plan, train: WindowDataset,
                    history: dict[str, Any]) -> SkeletonModel:
    from .windows import Normalisation

    names = train.keypoint_names
    return SkeletonModel(
        net, method=plan.method, preset=plan.preset,
        window=WindowConfig.from_dict(plan.window),
        normalisation=Normalisation.from_dict(plan.normalisation),
        edges=[(names[a], names[b]) for a, b in train.edges.tolist()],
        history=history,
    )


# ------------------------------------------------------------------------------- entry
def pretrain(
    tracks: PoseTracks | Sequence[PoseTracks],
    method: str = "mamp",
    *,
    preset: str | None = None,
    window: WindowConfig | Mapping[str, Any] | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    batch_size: int = 64,
    lr: float | None = None,
    weight_decay: float = 0.05,
    warmup_fraction: float = 0.05,
    min_lr_ratio: float | None = None,
    clip_grad: float | None = None,
    val_fraction: float = 0.1,
    device: str | torch.device = "auto",
    precision: str = "auto",
    seed: int = 0,
    augment: bool | Augment | Mapping[str, Any] = True,
    callbacks: Sequence[Callback] = (),
    cancel: threading.Event | Callable[[], bool] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
    num_workers: int = 0,
    log_every: int = 10,
    **model_overrides: Any,
) -> SkeletonModel:
    """Pretrain a masked skeleton model on one or several recordings.

    Parameters
    ----------
    tracks
        One PoseTracks or a list (same keypoints; the order may differ) with a known fps.
    method, preset, **model_overrides
        ``"mamp"``, ``"skeleton2vec"``, ``"skeletonmae"`` or ``"msae"``; a named preset of the
        method (e.g. ``"small"``, ``"paper"``) and hyperparameters of its Config.
    window
        WindowConfig or dict of its fields; default ``WindowConfig.for_fps`` of the first
        recording. The window length is rounded to whole temporal patches of the model.
    epochs, max_steps
        Length of the run: ``epochs`` passes over the training windows, cut at ``max_steps``
        optimiser steps (either alone also works; neither: about DEFAULT_STEPS steps).
    batch_size
        Windows per optimiser step over all processes (each of N torchrun processes takes
        batch_size // N).
    lr, weight_decay, warmup_fraction, min_lr_ratio, clip_grad
        AdamW (betas 0.9, 0.95; no decay on biases, norms, tables) with linear warm-up over
        ``warmup_fraction`` of the steps, then cosine decay to ``min_lr_ratio * lr``. None
        takes METHOD_DEFAULTS; ``clip_grad=0`` switches clipping off.
    val_fraction
        Share of time blocks held out for the validation loss (0: none).
    device, precision
        ``"auto"`` picks CUDA, MPS or CPU, and bf16/fp16 autocast where the hardware does it.
    seed
        Seeds initialisation, data order, augmentation and masking: same seed, same result
        (on the same device and precision).
    augment
        True (default :class:`~napari_skelmae.augment.Augment`), False, an Augment or a dict.
    callbacks
        Called with a :class:`Progress` every ``log_every`` steps and after every
        validation (in process 0 only).
    cancel
        A ``threading.Event`` or a function returning True: checked before every step; the
        run stops, writes nothing more and returns the model so far (``history["cancelled"]``).
    checkpoint_dir, checkpoint_every
        Write ``checkpoint-<step>.skelmae`` every N steps and at the end of the run.
    resume
        A checkpoint file: continue that run (it must have the same settings and data).
    num_workers
        DataLoader worker processes building batches (0: in this process).
    """
    dist = _Dist.from_env()
    model_class(method)  # an unknown method raises, listing the known ones
    defaults = METHOD_DEFAULTS[method]
    recordings = _as_recordings(tracks)
    config = resolve_config(method, preset, **model_overrides)
    window_config = _resolve_window(window, recordings[0], getattr(config, "patch", 1))
    augment_config = _resolve_augment(augment)
    epochs = _positive_int(epochs, "epochs")
    max_steps = _positive_int(max_steps, "max_steps")
    batch_size = _positive_int(batch_size, "batch_size", allow_none=False)
    checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every")
    log_every = _positive_int(log_every, "log_every", allow_none=False)
    if not isinstance(num_workers, int) or num_workers < 0:
        raise SkelmaeError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SkelmaeError(f"seed must be an integer >= 0, got {seed!r}")
    lr = defaults["lr"] if lr is None else lr
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise SkelmaeError(f"lr must be a positive number, got {lr!r}")
    weight_decay = _fraction(weight_decay, "weight_decay", 0.0, 10.0, False)
    warmup_fraction = _fraction(warmup_fraction, "warmup_fraction", 0.0, 1.0, True)
    min_lr_ratio = _fraction(defaults["min_lr_ratio"] if min_lr_ratio is None else min_lr_ratio,
                             "min_lr_ratio", 0.0, 1.0, False)
    clip_grad = defaults["clip_grad"] if clip_grad is None else clip_grad
    if clip_grad is not None and (not isinstance(clip_grad, (int, float)) or clip_grad < 0):
        raise SkelmaeError(f"clip_grad must be a number >= 0 or None, got {clip_grad!r}")
    val_fraction = _fraction(val_fraction, "val_fraction", 0.0, 1.0, True)
    if checkpoint_every is not None and checkpoint_dir is None:
        raise SkelmaeError("checkpoint_every needs a checkpoint_dir to write to")
    checkpoint_path = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if checkpoint_path is not None and checkpoint_path.exists() and not checkpoint_path.is_dir():
        raise SkelmaeError(f"checkpoint_dir '{checkpoint_path}' exists and is not a folder")
    for callback in callbacks:
        if not callable(callback):
            raise SkelmaeError(f"callback {callback!r} is not callable")
    if cancel is not None and not (isinstance(cancel, threading.Event) or callable(cancel)):
        raise SkelmaeError("cancel must be a threading.Event or a function returning a bool")
    resume_state = None
    if resume is not None:
        tensors, meta = read_safetensors(resume)
        if CHECKPOINT_KEY not in meta:
            raise SkelmaeError(f"'{resume}' is a model file, not a training checkpoint")
        resume_state = (tensors, meta, Path(resume))

    device_ = resolve_device(device, dist.local_rank)
    precision_ = resolve_precision(precision, device_)

    # data: windows, split (raises before anything trains)
    dataset = WindowDataset(recordings, window_config)
    train, val = split_train_val(dataset, val_fraction, seed=seed)
    if not len(train):
        raise SkelmaeError("no training windows are left after the validation split; "
                           "use more data or a smaller val_fraction")
    per_process = len(train) // dist.world
    if per_process == 0:
        raise SkelmaeError(f"{len(train)} training windows cannot be split over {dist.world} "
                           "processes")
    local_batch = max(1, batch_size // dist.world)
    if local_batch * dist.world != batch_size:
        logger.warning("pretrain: batch_size %d is not a multiple of %d processes; using %d",
                       batch_size, dist.world, local_batch * dist.world)
    if per_process < local_batch:
        logger.warning("pretrain: only %d training windows per process, fewer than the batch "
                       "size %d; each step uses all of them", per_process, local_batch)
        local_batch = per_process
    steps_per_epoch = per_process // local_batch
    if epochs is None and max_steps is None:
        epochs = max(1, math.ceil(DEFAULT_STEPS / steps_per_epoch))
    total_steps = min(epochs * steps_per_epoch if epochs else max_steps,
                      max_steps or epochs * steps_per_epoch)
    epochs = math.ceil(total_steps / steps_per_epoch)

    plan = _Plan(
        method=method, preset=preset,
        config=_skeleton_config_json(config),
        window=window_config.to_dict(),
        normalisation=dataset.normalisation.to_dict(),
        batch_size=local_batch, world_size=dist.world, steps_per_epoch=steps_per_epoch,
        epochs=epochs, total_steps=total_steps,
        warmup_steps=round(warmup_fraction * total_steps),
        lr=float(lr), min_lr=float(lr) * min_lr_ratio, weight_decay=weight_decay,
        clip_grad=float(clip_grad) if clip_grad else None,
        augment=augment_config.to_dict() if augment_config else None,
        val_fraction=val_fraction, seed=int(seed),
        n_train_windows=len(train), n_val_windows=len(val),
    )
    if resume_state is not None:
        _check_resume(plan, resume_state[1][CHECKPOINT_KEY], resume_state[2], device_,
                      precision_)

    spec = ModelSpec(dataset.n_keypoints, dataset.n_channels, window_config.n_frames,
                     tuple((int(a), int(b)) for a, b in dataset.edges.tolist()))
    rng_devices = [device_.index or 0] if device_.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # the caller's RNG state is left alone
        torch.manual_seed(seed)
        net = _build(method, spec, plan.config).to(device_)
        dist.start(device_)
        trainer = _Trainer(plan, net, train, val, augment_config, dist, device_,
                           precision_, callbacks, cancel, checkpoint_path, checkpoint_every,
                           num_workers, log_every)
        if resume_state is not None:
            tensors, meta, path = resume_state
            trainer.load_checkpoint(tensors, meta[CHECKPOINT_KEY],
                                    meta[METADATA_KEY].get("history") or {}, path)
        else:
            trainer.start_history(_device_name(device_))
        trainer.wrap_for_ddp()
        logger.info("pretrain: %s on %s (%s), %d steps of %d windows, %d train / %d val "
                    "windows", method, device_, precision_, total_steps,
                    local_batch * dist.world, len(train), len(val))
        trainer.run()
        history = trainer.finish_history()
    net.eval()
    return _skeleton_model(net, plan, train, history)


def _build(method: str, spec: ModelSpec, config: dict[str, Any]) -> MaskedSkeletonModel:
    """The network, with an option of the wrong type reported as bad input."""
    try:
        return build_model(method, spec, **config)
    except SkelmaeError:
        raise
    except (TypeError, ValueError) as e:
        raise SkelmaeError(f"{method}: cannot build the network with {config}: {e}") from None


def _skeleton_config_json(config: Any) -> dict[str, Any]:
    from .model import _jsonable

    return _jsonable(dataclasses.asdict(config))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _check_resume(plan: _Plan, trainer: dict[str, Any], path: Path, device: torch.device,
                  precision: str) -> None:
    """A resumed run must have the plan it was checkpointed with."""
    saved = trainer.get("plan") or {}
    now = dataclasses.asdict(plan)
    differ = [f"{k}: {saved.get(k)!r} in the checkpoint, {now[k]!r} now"
              for k in now if saved.get(k) != now[k]]
    if differ:
        raise SkelmaeError(
            f"'{path}' was written by a run with other settings or data; resume it with the "
            "same ones: " + "; ".join(differ)
        )
    if trainer.get("precision") != precision or trainer.get("device", "").split(":")[0] != (
        device.type
    ):
        logger.warning("pretrain: resuming a %s/%s run on %s/%s: the result will not be "
                       "bit-identical to an uninterrupted run", trainer.get("device"),
                       trainer.get("precision"), device, precision)

