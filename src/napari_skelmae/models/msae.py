"""MSAE: masked skeleton sequence autoencoder with SSTFormer blocks (Xu & Wang 2024; METHODS.md §1).

A window (B, T, V, C) is cut into T' = T/P slices of P frames; each slice is a row of P·V
(frame, joint) entries, giving a (B, D, T', P·V) map. Two-stage masking hides 40 % of the
frames and then 50 % of the joints of each kept frame. An STSE embedding (1x1 conv + BN +
LeakyReLU) and stacked SSTFormer blocks encode the whole grid with the hidden entries replaced
by a learnable mask token; more blocks and a 1x1 head decode coordinates. Loss: MSE on the
tracked hidden entries (optionally the tracked visible ones too). See ``docs/methods/msae.md``;
for imputation (``preset="impute"``) the hidden entries enter as their interpolation in time,
the decoder predicts a correction to it, and the loss is the distance (its Imputation part).

SSTFormer block (STTFormer's spatio-temporal tuples attention), per head h:
    A_h = tanh(Σ_{c,t'} Q_h[c,t',u]·K_h[c,t',v] / (d·T')) · α_h + A0_h      (PV x PV)
    Y_h[c,t',v] = Σ_u X[c,t',u]·A_h[u,v]                                   (no value projection)
then a 1x5 conv along the slice-joint axis, a 1x1 feed-forward and IFFA, a 3x1 conv along the
slice axis, each with a residual and LeakyReLU(0.1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import SkelmaeError
from ..masking import two_stage_mask
from .base import MaskedSkeletonModel, ModelSpec
from .blocks import sincos_1d, trunc_normal_
from .fill import check_fill_options, entry_error, interpolated_input, mix_in_gaps

SLOPE = 0.1  # LeakyReLU slope everywhere in STTFormer / MSAE

#: (in channels, out channels, query/key width d) of each SSTFormer block
BlockSpec = tuple[int, int, int]

PAPER_ENCODER: tuple[BlockSpec, ...] = (
    (64, 64, 16), (64, 64, 16), (64, 128, 32), (128, 128, 32), (128, 256, 64),
    (256, 256, 64), (256, 256, 64), (256, 256, 64),
)
# The paper's last decoder block, (64, 2, 16), is replaced by the linear 1x1 head.
PAPER_DECODER: tuple[BlockSpec, ...] = (
    (256, 256, 64), (256, 256, 64), (256, 256, 64), (256, 256, 64), (256, 128, 32),
    (128, 128, 32), (128, 64, 16), (64, 64, 16),
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Animal-sized defaults (a CPU-trainable width); ``presets["paper"]`` is the report's code."""

    patch: int = 4  # frames per slice (the paper's len_parts = 6); must divide T
    embed_dim: int = 32  # STSE width = the first encoder block's input
    encoder: tuple[BlockSpec, ...] = ((32, 32, 8), (32, 64, 16), (64, 64, 16))
    decoder: tuple[BlockSpec, ...] = ((64, 32, 8), (32, 32, 8))
    heads: int = 3
    kernel_size: tuple[int, int] = (3, 5)  # (IFFA along slices, conv along slice-joints)
    attn_dropout: float = 0.0
    frame_mask_ratio: float = 0.4
    joint_mask_ratio: float = 0.5
    mask_token: bool = True  # False: hidden entries are zero-filled, as in the paper's code
    visible_weight: float = 0.0  # weight of seen entries' error; 1 = the paper's whole sequence
    # "token": hidden entries enter as 0 (then the mask token); "interpolate": as the linear
    # interpolation in time of the seen entries (plus the mask token), and the decoder
    # predicts the correction to that interpolation
    fill: str = "token"
    coord_loss: str = "mse"  # per-entry error: "mse", or "distance" (Euclidean, smoothed)
    # share of windows masked with occlusion-like gaps (masking.gap_mask, gap_fraction of
    # the entries) instead of the two-stage mask: imputation meets such gaps (our addition)
    gap_ratio: float = 0.0
    gap_fraction: float = 0.25

    def __post_init__(self) -> None:
        # JSON round trips give lists; keep the dataclass hashable and comparable
        for name in ("encoder", "decoder"):
            blocks = tuple(tuple(int(v) for v in b) for b in getattr(self, name))
            object.__setattr__(self, name, blocks)
        object.__setattr__(self, "kernel_size", tuple(int(k) for k in self.kernel_size))


class SSTFormerBlock(nn.Module):
    """One STTFormer / SSTFormer block on (N, C_in, T', PV) -> (N, C_out, T', PV)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        qk_dim: int,
        heads: int,
        n_positions: int,
        kernel_size: tuple[int, int] = (3, 5),
        attn_dropout: float = 0.0,
    ):
        super().__init__()
        k_slice, k_joint = kernel_size
        self.heads, self.qk_dim = heads, qk_dim
        # fixed sin-cos over the P·V positions inside a slice; the slice index is not encoded
        self.register_buffer(
            "position", sincos_1d(n_positions, c_in).T.reshape(1, c_in, 1, n_positions),
            persistent=False,
        )
        self.qk = nn.Conv2d(c_in, 2 * heads * qk_dim, 1)
        self.alpha = nn.Parameter(torch.ones(heads))
        self.attn_bias = nn.Parameter(
            torch.full((heads, n_positions, n_positions), 1.0 / n_positions)
        )
        self.attn_drop = nn.Dropout(attn_dropout)
        self.joint_conv = nn.Sequential(
            nn.Conv2d(heads * c_in, c_out, (1, k_joint), padding=(0, k_joint // 2)),
            nn.BatchNorm2d(c_out),
        )
        self.ffn = nn.Sequential(nn.Conv2d(c_out, c_out, 1), nn.BatchNorm2d(c_out))
        self.iffa = nn.Sequential(
            nn.Conv2d(c_out, c_out, (k_slice, 1), padding=(k_slice // 2, 0)),
            nn.BatchNorm2d(c_out),
        )
        self.residual = (
            nn.Identity() if c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))
        )
        self.act = nn.LeakyReLU(SLOPE)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """A (N, H, PV, PV): one map per sample and head, shared by all slices."""
        n, _, tp, pv = x.shape
        q, k = self.qk(x + self.position.to(x.dtype)).view(
            n, 2, self.heads, self.qk_dim, tp, pv
        ).unbind(1)
        scores = torch.einsum("nhctu,nhctv->nhuv", q, k) / (self.qk_dim * tp)
        a = torch.tanh(scores) * self.alpha.view(1, -1, 1, 1) + self.attn_bias
        return self.attn_drop(a)

    def mix(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Y (N, H·C, T', PV), channel h·C + c = Σ_u X[c, t', u]·A_h[u, v], channels-last.

        One matmul per (sample, slice) of that slice's (PV, C) entries with the sample's maps
        stacked as ((v, h), u): the product lands as (N, T', PV, H·C) in memory, which is the
        channels-last layout the convolutions after it want (the einsum needed two copies)."""
        n, c, tp, pv = x.shape
        rows = x.permute(0, 2, 3, 1)  # (N, T', u, C); a view when x is channels-last
        maps = a.permute(0, 3, 1, 2).reshape(n, 1, pv * self.heads, pv)  # (N, 1, (v, h), u)
        return torch.matmul(maps, rows).view(n, tp, pv, self.heads * c).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attention(x)
        y = self.mix(x, a.to(x.dtype))
        res = self.residual(x)
        z = self.act(self.joint_conv(y) + res)
        z = self.act(self.ffn(z) + res)
        return self.act(self.iffa(z) + z)


def check_config(config: Config, spec: ModelSpec) -> None:
    """Refuse hyperparameters that cannot build, naming the option."""
    p = config.patch
    if p < 1 or spec.n_frames % p:
        raise SkelmaeError(
            f"msae: the slice length patch={p} must divide the window length {spec.n_frames} "
            f"(choose a window length that is a multiple of {p}, or another patch)"
        )
    if not config.encoder or not config.decoder:
        raise SkelmaeError("msae: encoder and decoder need at least one block each")
    chain = [config.embed_dim, *(b for b in config.encoder), *(b for b in config.decoder)]
    width = chain[0]
    for block in chain[1:]:
        if len(block) != 3 or min(block) < 1:
            raise SkelmaeError(
                f"msae: a block is (in, out, qk_dim) with positive sizes, got {block}"
            )
        if block[0] != width:
            raise SkelmaeError(
                f"msae: block {block} takes {block[0]} channels but receives {width} "
                "(embed_dim, encoder and decoder widths must chain)"
            )
        if block[0] % 2:
            raise SkelmaeError(f"msae: block {block}: the sin-cos encoding needs an even width")
        width = block[1]
    if config.heads < 1 or any(k < 1 or k % 2 == 0 for k in config.kernel_size):
        raise SkelmaeError(
            f"msae: heads={config.heads} must be >= 1 and kernel_size={config.kernel_size} odd"
        )
    for name in ("frame_mask_ratio", "joint_mask_ratio"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise SkelmaeError(f"msae: {name} must be in [0, 1), got {getattr(config, name)}")
    if config.frame_mask_ratio == 0.0 and config.joint_mask_ratio == 0.0:
        raise SkelmaeError("msae: with both mask ratios 0 nothing is hidden to reconstruct")
    check_fill_options("msae", config)
    if config.visible_weight < 0.0 or not 0.0 <= config.attn_dropout < 1.0:
        raise SkelmaeError(
            f"msae: visible_weight={config.visible_weight} must be >= 0 and "
            f"attn_dropout={config.attn_dropout} in [0, 1)"
        )


class Model(MaskedSkeletonModel):
    """MSAE; ``encode`` gives the encoder's features of each joint averaged over its slice."""

    name: ClassVar[str] = "msae"
    Config: ClassVar[type] = Config
    reconstructs_coordinates: ClassVar[bool] = True
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "small": dict(embed_dim=16, encoder=((16, 16, 8), (16, 32, 8)), decoder=((32, 16, 8),)),
        # for model.impute: interpolation in, correction out, trained on the distance
        # (docs/methods/msae.md, Imputation)
        "impute": dict(fill="interpolate", coord_loss="distance", gap_ratio=0.5),
        # the report's code (zebrafish210 config): len_parts 6, zero refill, whole-sequence MSE
        "paper": dict(patch=6, embed_dim=64, encoder=PAPER_ENCODER, decoder=PAPER_DECODER,
                      heads=3, kernel_size=(3, 5), frame_mask_ratio=0.4, joint_mask_ratio=0.5,
                      mask_token=False, visible_weight=1.0),
    }

    def __init__(self, spec: ModelSpec, config: Config):
        super().__init__(spec, config)
        check_config(config, spec)
        n_positions = config.patch * spec.n_keypoints

        def stack(blocks: tuple[BlockSpec, ...]) -> nn.Sequential:
            return nn.Sequential(*(
                SSTFormerBlock(c_in, c_out, d, config.heads, n_positions, config.kernel_size,
                               config.attn_dropout)
                for c_in, c_out, d in blocks
            ))

        interpolated = config.fill == "interpolate"
        self.embed = nn.Sequential(  # STSE
            # interpolated inputs mix O(1) positions with residuals ~100x smaller: standardise
            # every input channel first, so the small ones are not drowned in the first layer
            *([nn.BatchNorm2d(3 * spec.n_channels, affine=False)] if interpolated else []),
            nn.Conv2d(spec.n_channels * (3 if interpolated else 1), config.embed_dim, 1),
            nn.BatchNorm2d(config.embed_dim),
            nn.LeakyReLU(SLOPE),
        )
        self.mask_embedding = (
            nn.Parameter(trunc_normal_(torch.zeros(config.embed_dim))) if config.mask_token
            else None
        )
        self.encoder = stack(config.encoder)
        self.decoder = stack(config.decoder)
        self.head = nn.Conv2d(config.decoder[-1][1], spec.n_channels, 1)

    @property
    def feature_dim(self) -> int:
        return self.config.encoder[-1][1]  # the last encoder block's output channels

    def to_slices(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, V, C) -> (B, C, T', P·V), each row the P·V entries of P consecutive frames."""
        b, t, v, c = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, c, t // self.config.patch, self.config.patch * v)

    def from_slices(self, y: torch.Tensor) -> torch.Tensor:
        """(B, C, T', P·V) -> (B, T, V, C)."""
        b, c, tp, _ = y.shape
        return y.reshape(b, c, tp * self.config.patch, self.spec.n_keypoints).permute(0, 2, 3, 1)

    def model_input(
        self, x: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(prior, shown)``: what the network is shown, the seen entries and at ``hidden``
        entries 0 (``fill="token"``, prior None), or (``fill="interpolate"``) the
        interpolation in time of the seen ones (the prior), as deviations from each
        keypoint's window mean plus that mean (``fill.interpolated_input``)."""
        if self.config.fill == "interpolate":
            return interpolated_input(x, ~hidden)
        return None, torch.where(hidden.unsqueeze(-1), torch.zeros_like(x), x)

    def encode_hidden(
        self, x: torch.Tensor, hidden: torch.Tensor, shown: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encoder output (B, D, T', P·V) with the ``hidden`` (B, T, V) entries unseen: zero
        (or interpolated) input, then (with ``mask_token``) the learnable mask embedding
        after STSE: in place of the embedding, or added to it for interpolated entries."""
        seen = self.to_slices(~hidden.unsqueeze(-1))
        if shown is None:
            shown = self.model_input(x, hidden)[1]
        # channels-last ((B, T', P·V, C) in memory) from here on, kept by every block
        # (SSTFormerBlock.mix): oneDNN's convolutions and batch norms skip their reorders
        z = self.embed(self.to_slices(shown).contiguous(memory_format=torch.channels_last))
        if self.mask_embedding is not None:
            token = self.mask_embedding.to(z.dtype).view(1, -1, 1, 1)
            z = torch.where(seen, z, z + token if self.config.fill == "interpolate" else token)
        return self.encoder(z)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder output -> coordinates (B, T, V, C)."""
        return self.from_slices(self.head(self.decoder(features)))

    def predict(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Coordinates (float32) of every entry with the ``hidden`` ones unseen; with
        ``fill="interpolate"`` the decoder's output is a correction to the interpolation,
        added in float32."""
        prior, shown = self.model_input(x, hidden)
        out = self.decode(self.encode_hidden(x, hidden, shown)).float()
        return out if prior is None else out + prior

    def loss(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        self._check(x, valid)
        b, t, v, _ = x.shape
        with torch.no_grad():
            hidden, _ = two_stage_mask(
                b, t, v, self.config.frame_mask_ratio, self.config.joint_mask_ratio,
                valid=valid, generator=generator,
            )
            hidden = mix_in_gaps(hidden, self.config.gap_ratio, self.config.gap_fraction,
                                 generator)
            hidden = hidden | ~valid
            target = torch.where(valid.unsqueeze(-1), x, torch.zeros_like(x)).float()
        pred = self.predict(x, hidden).float()
        sq = ((pred - target) ** 2).mean(-1)  # (B, T, V)
        on_hidden = (valid & hidden).float()
        on_visible = (valid & ~hidden).float()
        mse_hidden = (sq * on_hidden).sum() / on_hidden.sum().clamp_min(1.0)
        mse_visible = (sq * on_visible).sum() / on_visible.sum().clamp_min(1.0)
        err = sq if self.config.coord_loss == "mse" else entry_error(pred, target, "distance")
        w = self.config.visible_weight
        loss = ((err * (on_hidden + w * on_visible)).sum()
                / (on_hidden.sum() + w * on_visible.sum()).clamp_min(1.0))
        return {
            "loss": loss, "mse_masked": mse_hidden.detach(), "mse_visible": mse_visible.detach()
        }

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T', V, D): each joint's features averaged over the tracked frames of its slice
        (over all P frames when none is tracked)."""
        self._check(x, valid)
        z = self.encode_hidden(x, ~valid)
        b, d, tp, _ = z.shape
        shape = (b, -1, tp, self.config.patch, self.spec.n_keypoints)
        w = self.to_slices(valid.unsqueeze(-1).to(z.dtype)).reshape(shape)
        w = w + (w.sum(3, keepdim=True) == 0).to(z.dtype)
        pooled = (z.reshape(shape) * w).sum(3) / w.sum(3)
        return pooled.permute(0, 2, 3, 1)

    def reconstruct(
        self, x: torch.Tensor, valid: torch.Tensor, masked: torch.Tensor
    ) -> torch.Tensor:
        self._check(x, valid)
        if masked.shape != valid.shape:
            raise SkelmaeError(
                f"masked has shape {tuple(masked.shape)}, expected {tuple(valid.shape)}"
            )
        return self.predict(x, masked | ~valid).float()
