"""Skeleton2vec: contextualised targets from an EMA teacher (Xu et al. 2024; METHODS.md §2).

A student encoder sees the visible tokens of a motion-aware tube mask; its decoder predicts,
for every hidden token, what the teacher (an exponential moving average of the student's
encoder) computes for that token from the whole unmasked window: the mean of the
parameter-free LayerNorm'd outputs of the teacher's top-K blocks, LayerNorm'd again. Loss: MSE
on hidden, valid tokens. See ``docs/methods/skeleton2vec.md``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..errors import SkelmaeError
from ..masking import gather_tokens, token_motion, tube_mask, visible_index
from .base import MaskedSkeletonModel, ModelSpec
from .blocks import (
    MaskedTokenDecoder,
    SkeletonEncoder,
    check_config,
    patchify,
    token_validity,
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Animal-sized defaults (docs/methods/skeleton2vec.md says why); ``presets["paper"]`` is
    the authors' dev configuration."""

    patch: int = 4  # frames per token
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    drop_path: float = 0.1
    layer_scale: float | None = 1e-4  # None: no LayerScale
    decoder_dim: int = 64  # half the encoder width (MAE's ratio); discarded after training
    decoder_depth: int = 2
    decoder_heads: int = 2  # head width 32, the papers' (256 / 8); 16 is memory-bound
    top_k_blocks: int | None = None  # teacher blocks averaged into the target; None: all
    mask_ratio: float = 0.75
    tube_len: int = 4  # temporal patches per tube
    motion_tau: float = 0.8  # <= 0: joints of a tube drawn uniformly
    ema_start: float = 0.99
    ema_end: float = 0.999
    ema_anneal_fraction: float = 0.25  # of total_steps, when ema_anneal_steps is None
    ema_anneal_steps: int | None = None  # absolute horizon (the paper's 20,000 updates)
    embed_validity: bool = True  # append per-frame validity flags to each token's input
    pos_init: str = "trunc_normal"  # "sincos" puts position into the targets: see the docs


def column_std(rows: torch.Tensor) -> torch.Tensor:
    """Unbiased std of each column of ``rows`` (N, D), 0 for N < 2: ``rows.std(dim=0)`` in two
    passes along rows, about 4x faster on the CPU than torch's column-wise Welford kernel."""
    n = rows.shape[0]
    if n < 2:
        return rows.new_zeros(rows.shape[1:])
    centred = rows - rows.mean(dim=0)
    return (centred.square().sum(dim=0) / (n - 1)).sqrt()


class Model(MaskedSkeletonModel):
    """Student encoder-decoder plus EMA teacher; ``encode`` gives the student's tokens (the
    encoder the authors' linear probe uses)."""

    name: ClassVar[str] = "skeleton2vec"
    Config: ClassVar[type] = Config
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "small": dict(dim=64, depth=2, heads=4, decoder_dim=64, decoder_depth=1,
                      decoder_heads=4),
        # dev config pretrain_skt2vec2.yaml (T=120 windows, 30 fps, 25 joints)
        "paper": dict(patch=4, dim=256, depth=8, heads=8, mlp_ratio=4.0, drop_path=0.2,
                      layer_scale=1e-4, decoder_dim=256, decoder_depth=4, decoder_heads=8,
                      top_k_blocks=8, mask_ratio=0.9, tube_len=5, motion_tau=0.8,
                      ema_start=0.9998, ema_end=0.99999, ema_anneal_steps=20000,
                      embed_validity=False, pos_init="trunc_normal"),
    }

    def __init__(self, spec: ModelSpec, config: Config):
        super().__init__(spec, config)
        check_config(config, spec, self.name)
        if config.top_k_blocks is not None and not 1 <= config.top_k_blocks <= config.depth:
            raise SkelmaeError(f"skeleton2vec: top_k_blocks={config.top_k_blocks} must be "
                               f"between 1 and depth={config.depth}")
        if config.tube_len < 1:
            raise SkelmaeError(f"skeleton2vec: tube_len must be >= 1, got {config.tube_len}")
        if not 0.0 <= config.ema_start <= config.ema_end <= 1.0:
            raise SkelmaeError("skeleton2vec: need 0 <= ema_start <= ema_end <= 1, got "
                               f"{config.ema_start}, {config.ema_end}")
        if config.ema_anneal_steps is not None and config.ema_anneal_steps < 1:
            raise SkelmaeError("skeleton2vec: ema_anneal_steps must be >= 1 or None, got "
                               f"{config.ema_anneal_steps}")
        if not 0.0 < config.ema_anneal_fraction <= 1.0:
            raise SkelmaeError("skeleton2vec: ema_anneal_fraction must be in (0, 1], got "
                               f"{config.ema_anneal_fraction}")
        self.encoder = SkeletonEncoder(
            spec.n_keypoints, spec.n_channels, spec.n_frames, config.patch, config.dim,
            config.depth, config.heads, config.mlp_ratio, config.drop_path, config.layer_scale,
            embed_validity=config.embed_validity, pos_init=config.pos_init,
        )
        self.decoder = MaskedTokenDecoder(
            spec.n_keypoints, spec.n_frames // config.patch, config.dim, config.decoder_dim,
            config.decoder_depth, config.decoder_heads, config.dim, config.mlp_ratio,
            pos_init=config.pos_init,
        )
        self.teacher = copy.deepcopy(self.encoder).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> Model:
        """The teacher always runs in eval mode (no drop-path)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def mask(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Motion-aware tube mask (B, TP, V), True = hidden."""
        p = self.config.patch
        known = torch.where(valid.unsqueeze(-1), x.float(), torch.nan)
        motion = token_motion(patchify(known, p))
        b, tp, v = motion.shape
        return tube_mask(
            b, tp, v, self.config.mask_ratio, self.config.tube_len, motion=motion,
            tau=self.config.motion_tau, valid=token_validity(valid, p), generator=generator,
        )

    @torch.no_grad()
    def targets(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Teacher targets (B, TP, V, D) from the full window, invalid tokens hidden as keys:
        LN(mean over the top-K blocks of LN(block output)), LayerNorms without parameters."""
        _, hidden = self.teacher.encode_all(x, valid, return_hidden=True)
        top = hidden[-(self.config.top_k_blocks or len(hidden)) :]
        d = self.config.dim
        mean = torch.stack([F.layer_norm(h.float(), (d,)) for h in top]).mean(dim=0)
        b, tp, v = valid.shape[0], valid.shape[1] // self.config.patch, valid.shape[2]
        return F.layer_norm(mean, (d,)).reshape(b, tp, v, d)

    def loss(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        self._check(x, valid)
        with torch.no_grad():
            masked = self.mask(x, valid, generator)
            index = visible_index(masked)
            target = self.targets(x, valid)
        tokens, tok_valid = self.encoder.embed(x, valid)
        b, tp, v, d = tokens.shape
        visible = gather_tokens(tokens.reshape(b, tp * v, d), index)
        key_valid = gather_tokens(tok_valid.reshape(b, tp * v), index)
        encoded = self.encoder(visible, key_valid, generator)
        pred = self.decoder(encoded, index, tp, generator)
        weight = (masked & tok_valid).float()
        per_token = ((pred.float() - target) ** 2).mean(dim=-1)
        loss = (per_token * weight).sum() / weight.sum().clamp_min(1.0)
        with torch.no_grad():  # collapse monitor: 0 when every token gets the same target
            spread = column_std(target[tok_valid]).mean()
        return {"loss": loss, "target_std": spread}

    def ema_decay(self, step: int, total_steps: int) -> float:
        """τ(n) = τ1 − (τ1 − τ0)(1 − n/N) for n < N, then τ1; N is ``ema_anneal_steps`` or
        ``ema_anneal_fraction`` of the run, so short runs get the whole schedule."""
        c = self.config
        horizon = c.ema_anneal_steps or max(1, round(c.ema_anneal_fraction * total_steps))
        if step >= horizon:
            return c.ema_end
        return c.ema_end - (c.ema_end - c.ema_start) * (1.0 - step / horizon)

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """teacher ← τ·teacher + (1 − τ)·student, after optimiser step ``step`` (1-based)."""
        tau = self.ema_decay(step, total_steps)
        teacher, student = list(self.teacher.parameters()), list(self.encoder.parameters())
        if len(teacher) != len(student):
            raise SkelmaeError("skeleton2vec: the teacher and the student encoder differ")
        torch._foreach_lerp_(teacher, [s.detach() for s in student], 1.0 - tau)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        self._check(x, valid)
        return self.encoder.encode_all(x, valid)
