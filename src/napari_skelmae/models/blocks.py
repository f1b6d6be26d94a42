"""Transformer building blocks shared by the masked skeleton methods.

Shapes: a window is ``x`` (B, T, V, C) with ``valid`` (B, T, V). A token is one keypoint over a
temporal patch of P frames, so a window becomes (B, TP, V, D) tokens with TP = T // P; the
transformer sees them flattened time-major to (B, TP * V, D). Written from the formulas in
``shared/papers/METHODS.md`` (MAMP / Skeleton2vec tokenisation, pre-LN ViT blocks).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SkelmaeError

LN_EPS = 1e-6  # the MAE family's LayerNorm epsilon
#: attention rows shorter than this take their bf16 softmax through float32 (faster there)
SHORT_SOFTMAX = 64


# ---- fixed helpers (also used by the SkeletonMAE / MSAE models: keep names stable) ---------
def sincos_1d(n: int, dim: int) -> torch.Tensor:
    """Fixed sin-cos position embedding (n, dim): sin(p * w_i) then cos(p * w_i) with
    w_i = 10000^(-2i / dim), as in the Transformer and MAE."""
    if dim % 2:
        raise SkelmaeError(f"a sin-cos embedding needs an even width, got {dim}")
    pos = torch.arange(n, dtype=torch.float64)
    omega = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = pos[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(n_rows: int, n_cols: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos embedding (n_rows, n_cols, dim): half the width encodes the row, half
    the column (MAE's decoder embedding; here rows = temporal patches, columns = keypoints)."""
    if dim % 4:
        raise SkelmaeError(f"a 2D sin-cos embedding needs a width divisible by 4, got {dim}")
    rows = sincos_1d(n_rows, dim // 2)[:, None, :].expand(n_rows, n_cols, dim // 2)
    cols = sincos_1d(n_cols, dim // 2)[None, :, :].expand(n_rows, n_cols, dim // 2)
    return torch.cat([rows, cols], dim=-1)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, T, V, C) -> (B, T // p, V, p * C): each keypoint's p consecutive frames become one
    token, values ordered frame-major (frame 0's C values, then frame 1's, ...)."""
    b, t, v, c = x.shape
    if t % p:
        raise SkelmaeError(f"window length {t} is not a multiple of the temporal patch {p}")
    return x.reshape(b, t // p, p, v, c).permute(0, 1, 3, 2, 4).reshape(b, t // p, v, p * c)


def unpatchify(tokens: torch.Tensor, p: int, c: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, TP, V, p * C) -> (B, TP * p, V, C)."""
    b, tp, v, _ = tokens.shape
    return tokens.reshape(b, tp, v, p, c).permute(0, 1, 3, 2, 4).reshape(b, tp * p, v, c)


def token_validity(valid: torch.Tensor, p: int) -> torch.Tensor:
    """(B, T, V) frame validity -> (B, TP, V): a token is valid when any of its frames is
    (the convention of ``MaskedSkeletonModel.frame_features``)."""
    b, t, v = valid.shape
    return valid.reshape(b, t // p, p, v).any(dim=2)


def check_windows(
    x: torch.Tensor, valid: torch.Tensor, n_keypoints: int, n_channels: int, patch: int
) -> None:
    """Refuse a batch the model was not built for, naming what differs."""
    if x.ndim != 4 or valid.shape != x.shape[:3]:
        raise SkelmaeError(
            f"expected windows x (B, T, V, C) and valid (B, T, V), got {tuple(x.shape)} and "
            f"{tuple(valid.shape)}"
        )
    _, t, v, c = x.shape
    if v != n_keypoints or c != n_channels:
        raise SkelmaeError(
            f"the model was built for {n_keypoints} keypoints in {n_channels}D, got windows "
            f"with {v} keypoints in {c}D"
        )
    if t % patch:
        raise SkelmaeError(f"window length {t} is not a multiple of the temporal patch {patch}")


def check_config(config: Any, spec: Any, method: str) -> None:
    """Refuse encoder-decoder hyperparameters that cannot build (``config`` has patch, dim,
    heads, decoder_dim, decoder_heads, mask_ratio), naming the option."""
    if config.patch < 1 or spec.n_frames % config.patch:
        raise SkelmaeError(
            f"{method}: patch={config.patch} must divide the window length {spec.n_frames}"
        )
    for dim, heads, what in (
        (config.dim, config.heads, "dim/heads"),
        (config.decoder_dim, config.decoder_heads, "decoder_dim/decoder_heads"),
    ):
        if heads < 1 or dim < 1 or dim % heads:
            raise SkelmaeError(f"{method}: {what}={dim}/{heads}: the width must be a multiple "
                               "of the number of heads")
    if not 0.0 <= config.mask_ratio < 1.0:
        raise SkelmaeError(f"{method}: mask_ratio must be in [0, 1), got {config.mask_ratio}")


def scatter_tokens(
    visible: torch.Tensor, index: torch.Tensor, fill: torch.Tensor, n: int
) -> torch.Tensor:
    """Place ``visible`` (B, K, D) at rows ``index`` of a (B, n, D) sequence of ``fill`` (D,)
    (the mask token); differentiable in both. The inverse of ``masking.gather_tokens``."""
    b, _, d = visible.shape
    base = fill.to(visible.dtype).expand(b, n, d)
    return base.scatter(1, index.unsqueeze(-1).expand(-1, -1, d), visible)


def attention_mask(key_valid: torch.Tensor | None) -> torch.Tensor | None:
    """(B, N) key validity -> boolean SDPA mask (B, 1, 1, N), True = may be attended to.

    A sample without any valid token attends to everything (an all-False row would make
    softmax NaN); its outputs carry no information and are never used as targets. When every
    key is valid there is no mask, which keeps SDPA on its fastest (flash) kernels."""
    if key_valid is None or bool(key_valid.all()):
        return None
    allowed = key_valid | ~key_valid.any(dim=1, keepdim=True)
    return allowed[:, None, None, :]


def init_weights(module: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform Linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    return nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


# ---- embeddings ------------------------------------------------------------------------------
class TokenEmbedding(nn.Module):
    """One keypoint over P frames -> D: a linear map of its P*C coordinates (MAMP's Conv2d with
    kernel and stride (P, 1), written as a Linear on patchified values).

    With ``with_validity`` the P per-frame validity flags are appended to the input, so a
    missing frame (zero-filled) is distinguishable from a keypoint sitting at the origin."""

    def __init__(self, n_channels: int, patch: int, dim: int, with_validity: bool = False):
        super().__init__()
        self.patch = patch
        self.with_validity = with_validity
        self.proj = nn.Linear(patch * (n_channels + int(with_validity)), dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        flags = valid.unsqueeze(-1)
        values = patchify(torch.where(flags, x, torch.zeros_like(x)), self.patch)
        if self.with_validity:
            values = torch.cat([values, patchify(flags.to(x.dtype), self.patch)], dim=-1)
        return self.proj(values)


class PositionEmbedding(nn.Module):
    """Learnable spatial (1, 1, V, D) plus temporal (1, TP, 1, D) embeddings.

    ``init="trunc_normal"``: std 0.02, as MAMP / Skeleton2vec. ``init="sincos"``: the temporal
    table holds sin-cos of the patch index in the first D/2 channels and the spatial table
    sin-cos of the keypoint index in the last D/2 (together MAE's fixed 2D embedding), still
    learnable: positions are distinguishable from the first step, which shortens the plateau
    at the mean prediction in short runs (docs/methods/mamp.md).

    A window with another number of temporal patches gets the temporal table linearly
    interpolated (ViT's practice for other input sizes), so the model can embed a shorter
    recording end or a longer window; its training length remains the best-behaved."""

    INITS = ("trunc_normal", "sincos")

    def __init__(self, n_patches: int, n_keypoints: int, dim: int, init: str = "trunc_normal"):
        super().__init__()
        if init not in self.INITS:
            raise SkelmaeError(f"position embedding init must be one of {self.INITS}, got {init!r}")
        self.spatial = nn.Parameter(torch.zeros(1, 1, n_keypoints, dim))
        self.temporal = nn.Parameter(torch.zeros(1, n_patches, 1, dim))
        with torch.no_grad():
            if init == "sincos":
                if dim % 4:
                    raise SkelmaeError(
                        f"sin-cos position embeddings need a width divisible by 4, got {dim}"
                    )
                self.temporal[0, :, 0, : dim // 2] = sincos_1d(n_patches, dim // 2)
                self.spatial[0, 0, :, dim // 2 :] = sincos_1d(n_keypoints, dim // 2)
            else:
                trunc_normal_(self.spatial)
                trunc_normal_(self.temporal)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tp = tokens.shape[1]
        temporal = self.temporal
        if tp != temporal.shape[1]:
            table = temporal[0, :, 0, :].T.unsqueeze(0)  # (1, D, TP_train)
            table = F.interpolate(table, size=tp, mode="linear", align_corners=False)
            temporal = table[0].T[None, :, None, :]
        return tokens + self.spatial.to(tokens.dtype) + temporal.to(tokens.dtype)


# ---- transformer -----------------------------------------------------------------------------
class Attention(nn.Module):
    """Multi-head self-attention with qkv bias: ``scaled_dot_product_attention``, except in
    bfloat16 on the CPU, where :func:`explicit_attention` is faster."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise SkelmaeError(f"width {dim} is not divisible by {heads} attention heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu":
            out = explicit_attention(q, k, v, mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v for q (B, H, N, d), k and v (B, H, M, d) and a key
    mask (B, 1, 1, M), True = may be attended to (:func:`attention_mask`).

    SDPA's math as two batched matmuls, the mask an additive -inf bias folded into the first
    (``baddbmm``), so it costs no extra pass over the (N, M) scores. In bfloat16 on the CPU
    this beats torch's flash kernel (2.13) at skeleton sizes, by several times in the
    backward pass (benchmarks/bench_pretrain.py)."""
    b, h, n, d = q.shape
    m = k.shape[-2]
    bias = torch.zeros((b, 1, 1, m) if mask is not None else (1, 1, 1), dtype=q.dtype,
                       device=q.device)
    if mask is not None:
        bias.masked_fill_(~mask.expand(b, 1, 1, m), float("-inf"))
        bias = bias.expand(b, h, 1, m).reshape(b * h, 1, m)
    scores = torch.baddbmm(bias, q.reshape(b * h, n, d), k.reshape(b * h, m, d).transpose(1, 2),
                           alpha=d**-0.5)
    if m < SHORT_SOFTMAX and scores.dtype == torch.bfloat16:  # slow kernel on short rows
        weights = scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype)
    else:
        weights = scores.softmax(dim=-1)
    return torch.bmm(weights, v.reshape(b * h, m, d)).view(b, h, n, d)


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample with probability ``p`` in training,
    drawing from ``generator`` so runs are reproducible."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        device = generator.device if generator is not None else x.device
        keep = torch.rand(x.shape[0], generator=generator, device=device).to(x.device) >= self.p
        return x * (keep.to(x.dtype) / (1.0 - self.p)).view(-1, *([1] * (x.ndim - 1)))


class LayerScale(nn.Module):
    """Per-channel learnable gain on a residual branch (CaiT), initialised small."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.to(x.dtype)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with MLP ratio 4 and GELU;
    optional drop-path and LayerScale on both branches (Skeleton2vec)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        layer_scale: float | None = None,
    ):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.scale1 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.scale2 = LayerScale(dim, layer_scale) if layer_scale else nn.Identity()
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        x = x + self.drop_path(self.scale1(self.attn(self.norm1(x), mask)), generator)
        return x + self.drop_path(self.scale2(self.mlp(self.norm2(x))), generator)


class TransformerStack(nn.Module):
    """``depth`` blocks and a final LayerNorm. Drop-path grows linearly from 0 to
    ``drop_path`` over depth (the stochastic-depth decay rule of DeiT / data2vec)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        layer_scale: float | None = None,
    ):
        super().__init__()
        rates = torch.linspace(0.0, drop_path, depth).tolist() if depth > 1 else [drop_path]
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_ratio, rate, layer_scale) for rate in rates[:depth]
        )
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(
        self,
        x: torch.Tensor,
        key_valid: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_hidden: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, N, D) -> (B, N, D) after the final LN; with ``return_hidden`` also every block's
        output before that LN (Skeleton2vec's teacher targets). ``key_valid`` (B, N) hides
        invalid tokens from every query."""
        mask = attention_mask(key_valid)
        hidden = []
        for block in self.blocks:
            x = block(x, mask, generator)
            hidden.append(x)
        out = self.norm(x)
        return (out, hidden) if return_hidden else out


class SkeletonEncoder(nn.Module):
    """MAMP / Skeleton2vec encoder: token embedding, learnable position embeddings (added
    before any masking) and a transformer stack."""

    def __init__(
        self,
        n_keypoints: int,
        n_channels: int,
        n_frames: int,
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        layer_scale: float | None = None,
        embed_validity: bool = False,
        pos_init: str = "trunc_normal",
    ):
        super().__init__()
        if n_frames % patch:
            raise SkelmaeError(
                f"window length {n_frames} is not a multiple of the temporal patch {patch}"
            )
        self.patch = patch
        self.token_embed = TokenEmbedding(n_channels, patch, dim, embed_validity)
        self.pos_embed = PositionEmbedding(n_frames // patch, n_keypoints, dim, pos_init)
        self.stack = TransformerStack(dim, depth, heads, mlp_ratio, drop_path, layer_scale)
        self.apply(init_weights)

    def embed(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows -> position-embedded tokens (B, TP, V, D) and token validity (B, TP, V)."""
        return self.pos_embed(self.token_embed(x, valid)), token_validity(valid, self.patch)

    def forward(
        self,
        tokens: torch.Tensor,
        key_valid: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_hidden: bool = False,
    ):
        return self.stack(tokens, key_valid, generator, return_hidden)

    def encode_all(
        self, x: torch.Tensor, valid: torch.Tensor, return_hidden: bool = False
    ):
        """All tokens, no masking, invalid tokens hidden as keys -> (B, TP, V, D) after the
        final LN (and, with ``return_hidden``, the flat per-block outputs)."""
        tokens, tok_valid = self.embed(x, valid)
        b, tp, v, d = tokens.shape
        result = self.stack(
            tokens.reshape(b, tp * v, d), tok_valid.reshape(b, tp * v), return_hidden=return_hidden
        )
        if return_hidden:
            return result[0].reshape(b, tp, v, d), result[1]
        return result.reshape(b, tp, v, d)


class MaskedTokenDecoder(nn.Module):
    """MAE-style decoder: Linear to its width, mask tokens at the hidden positions, its own
    learnable position embeddings, blocks, LN, Linear to ``out_dim`` values per token."""

    def __init__(
        self,
        n_keypoints: int,
        n_patches: int,
        in_dim: int,
        dim: int,
        depth: int,
        heads: int,
        out_dim: int,
        mlp_ratio: float = 4.0,
        pos_init: str = "trunc_normal",
    ):
        super().__init__()
        self.n_keypoints = n_keypoints
        self.proj_in = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.pos_embed = PositionEmbedding(n_patches, n_keypoints, dim, pos_init)
        self.stack = TransformerStack(dim, depth, heads, mlp_ratio)
        self.head = nn.Linear(dim, out_dim)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self,
        visible: torch.Tensor,
        index: torch.Tensor,
        n_patches: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Encoded visible tokens (B, K, D_enc) at flat positions ``index`` (B, K) ->
        predictions for every token (B, TP, V, out_dim)."""
        b = visible.shape[0]
        v = self.n_keypoints
        full = scatter_tokens(self.proj_in(visible), index, self.mask_token, n_patches * v)
        full = self.pos_embed(full.reshape(b, n_patches, v, -1)).reshape(b, n_patches * v, -1)
        return self.head(self.stack(full, generator=generator)).reshape(b, n_patches, v, -1)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "Attention",
    "Block",
    "DropPath",
    "LayerScale",
    "MaskedTokenDecoder",
    "PositionEmbedding",
    "SkeletonEncoder",
    "TokenEmbedding",
    "TransformerStack",
    "attention_mask",
    "check_config",
    "check_windows",
    "count_parameters",
    "init_weights",
    "patchify",
    "scatter_tokens",
    "sincos_1d",
    "sincos_2d",
    "token_validity",
    "trunc_normal_",
    "unpatchify",
]
