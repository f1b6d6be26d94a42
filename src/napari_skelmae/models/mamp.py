"""MAMP: masked motion prediction (Mao et al., ICCV 2023; METHODS.md §4).

The encoder sees only the visible tokens (motion-aware masking hides high-motion tokens more
often); a light decoder fills in mask tokens and predicts, for every hidden token, the
per-token normalised motion m[t] = x[t+1] - x[t] of its P frames. Loss: MSE on hidden tokens,
only where the motion is defined (both frames of the difference tracked). See
``docs/methods/mamp.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..masking import gather_tokens, motion_aware_mask, token_motion, visible_index
from .base import MaskedSkeletonModel, ModelSpec
from .blocks import (
    MaskedTokenDecoder,
    SkeletonEncoder,
    check_config,
    patchify,
    token_validity,
)

NORM_EPS = 1e-6  # MAMP's per-token target normalisation epsilon


@dataclasses.dataclass(frozen=True)
class Config:
    """Animal-sized defaults (docs/methods/mamp.md says why); ``presets["paper"]`` is MAMP's
    NTU-60 configuration."""

    patch: int = 4  # frames per token
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    decoder_dim: int = 64  # half the encoder width (MAE's ratio); discarded after training
    decoder_depth: int = 2
    decoder_heads: int = 2  # head width 32, the papers' (256 / 8); 16 is memory-bound
    mask_ratio: float = 0.75
    motion_tau: float = 0.8  # <= 0: uniform random masking
    embed_validity: bool = True  # append per-frame validity flags to each token's input
    pos_init: str = "sincos"  # learnable position embeddings start as sin-cos ("trunc_normal")


def motion_target(
    x: torch.Tensor, valid: torch.Tensor, patch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """MAMP's target: per-token normalised motion (B, TP, V, P*C) and where it is defined.

    m[t] = x[t+1] - x[t], m[T-1] = 0; a value is defined only when frames t and t+1 are both
    valid (m[T-1] never is). Each token is normalised by the mean and unbiased variance of its
    own defined values, (m - mean) / sqrt(var + 1e-6); undefined values are 0."""
    x = x.float()
    c = x.shape[-1]
    step_ok = valid[:, 1:] & valid[:, :-1]
    defined = torch.cat([step_ok, torch.zeros_like(valid[:, :1])], dim=1)
    step = torch.cat([x[:, 1:] - x[:, :-1], torch.zeros_like(x[:, :1])], dim=1)
    weight = patchify(defined.unsqueeze(-1).expand(*defined.shape, c), patch)
    motion = patchify(torch.where(defined.unsqueeze(-1), step, 0.0), patch)
    count = weight.sum(-1, keepdim=True)
    mean = motion.sum(-1, keepdim=True) / count.clamp_min(1)
    var = (((motion - mean) * weight) ** 2).sum(-1, keepdim=True) / (count - 1).clamp_min(1)
    target = torch.where(weight, (motion - mean) / torch.sqrt(var + NORM_EPS), 0.0)
    return target, weight


class Model(MaskedSkeletonModel):
    """MAMP encoder-decoder; ``encode`` gives the encoder's tokens for every window."""

    name: ClassVar[str] = "mamp"
    Config: ClassVar[type] = Config
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "small": dict(dim=64, depth=2, heads=4, decoder_dim=64, decoder_depth=1,
                      decoder_heads=4),
        # MAMP NTU-60 (T=120 windows, 30 fps, 25 joints); decoder heads are not stated: 8
        "paper": dict(patch=4, dim=256, depth=8, heads=8, mlp_ratio=4.0, decoder_dim=256,
                      decoder_depth=3, decoder_heads=8, mask_ratio=0.9, motion_tau=0.8,
                      embed_validity=False, pos_init="trunc_normal"),
    }

    def __init__(self, spec: ModelSpec, config: Config):
        super().__init__(spec, config)
        check_config(config, spec, self.name)
        self.encoder = SkeletonEncoder(
            spec.n_keypoints, spec.n_channels, spec.n_frames, config.patch, config.dim,
            config.depth, config.heads, config.mlp_ratio,
            embed_validity=config.embed_validity, pos_init=config.pos_init,
        )
        self.decoder = MaskedTokenDecoder(
            spec.n_keypoints, spec.n_frames // config.patch, config.dim, config.decoder_dim,
            config.decoder_depth, config.decoder_heads, config.patch * spec.n_channels,
            config.mlp_ratio, pos_init=config.pos_init,
        )

    def mask(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Motion-aware mask (B, TP, V), True = hidden, from the input's own token motion."""
        p = self.config.patch
        known = torch.where(valid.unsqueeze(-1), x.float(), torch.nan)
        motion = token_motion(patchify(known, p))
        return motion_aware_mask(
            motion, self.config.mask_ratio, self.config.motion_tau, token_validity(valid, p),
            generator,
        )

    def loss(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        self._check(x, valid)
        with torch.no_grad():
            masked = self.mask(x, valid, generator)
            index = visible_index(masked)
            target, defined = motion_target(x, valid, self.config.patch)
        tokens, tok_valid = self.encoder.embed(x, valid)
        b, tp, v, d = tokens.shape
        visible = gather_tokens(tokens.reshape(b, tp * v, d), index)
        key_valid = gather_tokens(tok_valid.reshape(b, tp * v), index)
        encoded = self.encoder(visible, key_valid, generator)
        pred = self.decoder(encoded, index, tp, generator)
        weight = (defined & masked.unsqueeze(-1)).float()
        loss = (((pred.float() - target) ** 2) * weight).sum() / weight.sum().clamp_min(1.0)
        return {"loss": loss}

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        self._check(x, valid)
        return self.encoder.encode_all(x, valid)
