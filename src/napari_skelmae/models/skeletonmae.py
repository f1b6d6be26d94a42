"""SkeletonMAE: a graph masked autoencoder over the skeleton (Yan et al., ICCV 2023; METHODS.md §3).

Each temporal patch of a window is a skeleton graph G = (V, A, X). Whole body parts are hidden
(their node features replaced by a learnable [MASK]); an encoder of stacked GIN convolutions,
then MLP -> BN + ReLU -> GIN, gives H; a decoder of one GIN layer + MLP predicts Y. Loss: the
scaled cosine error (1 - cos(x_i, y_i))^gamma over the hidden, tracked nodes, plus a
coordinate MSE that fixes the scale the cosine leaves free. Adaptations for animals (see
``docs/methods/skeletonmae.md``):

* a node's feature is the keypoint's trajectory over P frames (P*C values, MAMP's token),
  because the cosine between raw 2D coordinates only compares their direction from the
  egocentric centre;
* per-joint temporal mixing (dilated 1D convolutions plus the joint's window mean) after every
  encoder GIN layer and before the decoder's GIN, the role of the paper's STRL stage, so
  hidden joints are filled from their own past and future as well as from their neighbours;
  for the same reason GraphMAE's re-mask (zeroing hidden nodes of H) is off by default;
* a learnable per-keypoint embedding, because a GIN cannot tell apart joints in symmetric
  places of the graph (left and right legs);
* no skeleton edges in the file: a fully connected graph for up to 6 keypoints, else a chain
  in keypoint order (tail points of a fish, listed head to tail).

For imputation (``preset="impute"``): MSAE's per-frame masking instead of body parts, the
hidden frames' linear interpolation as input and baseline of the output, and a distance loss
(docs/methods/msae.md, Imputation).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SkelmaeError
from ..masking import body_parts, graph_part_mask, two_stage_mask
from .base import MaskedSkeletonModel, ModelSpec
from .blocks import patchify, token_validity, trunc_normal_, unpatchify
from .fill import check_fill_options, entry_error, interpolated_input, mix_in_gaps

#: below this many keypoints a skeleton without edges is treated as fully connected
FULLY_CONNECTED_UP_TO = 6
#: masking strategies (Config.masking)
MASKINGS = ("parts", "two_stage")
#: targets shorter than this (the centring keypoint, identically 0) have no direction
COSINE_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class Config:
    """Animal-sized defaults; ``presets["paper"]`` is the per-frame GraphMAE-style setting."""

    patch: int = 4  # frames per node feature (1 = the paper's per-frame graph)
    dim: int = 64
    gin_layers: int = 3  # L: GIN convolutions before the MLP -> BN+ReLU -> GIN head
    temporal_kernel: int = 3  # per-joint conv over temporal patches; 1 = none (paper)
    mask_ratio: float = 0.5  # at least this fraction of joints hidden, whole body parts
    part_size: int = 3  # largest body part when splitting the skeleton (masking.body_parts)
    gamma: float = 2.0  # exponent of the scaled cosine error
    coord_weight: float = 1.0  # weight of the coordinate MSE next to the cosine error
    remask: bool = False  # zero the hidden nodes of H before decoding (GraphMAE; True in "paper")
    # "parts": whole body-part nodes per temporal patch (the paper); "two_stage": MSAE's
    # per-frame masking (frame_mask_ratio of the frames, then joint_mask_ratio of the joints of
    # each other frame), the holes imputation meets: a node with some frames hidden stays an
    # input with those frames flagged missing, only nodes with nothing left take [MASK], and
    # every hidden tracked entry is a coordinate target
    masking: str = "parts"
    frame_mask_ratio: float = 0.4
    joint_mask_ratio: float = 0.5
    # "token": hidden frames enter as 0 and hidden nodes as [MASK]; "interpolate": hidden
    # frames enter as the linear interpolation in time of the seen ones (still flagged
    # unseen), [MASK] is added to hidden nodes, and the decoder predicts the correction
    fill: str = "token"
    coord_loss: str = "mse"  # coordinate term per entry: "mse", or "distance" (Euclidean)
    # with masking="two_stage": share of windows masked with occlusion-like gaps instead
    # (masking.gap_mask, gap_fraction of the entries; our addition, for imputation)
    gap_ratio: float = 0.0
    gap_fraction: float = 0.25


def skeleton_graph(edges: tuple[tuple[int, int], ...], n_keypoints: int) -> list[tuple[int, int]]:
    """The undirected edges the GIN aggregates over (no self-loops: GIN adds (1+eps)·h_i).

    Without edges: all pairs for up to ``FULLY_CONNECTED_UP_TO`` keypoints (a 4-point DLC mouse:
    every point informs every other), else a chain in keypoint order (pose files list a fish or
    a body axis from head to tail; any order still gives a connected graph)."""
    pairs = {(min(a, b), max(a, b)) for a, b in edges if a != b}
    for a, b in pairs:
        if a < 0 or b >= n_keypoints:
            raise SkelmaeError(
                f"skeleton edge ({a}, {b}) refers to a keypoint outside 0..{n_keypoints - 1}"
            )
    if not pairs:
        if n_keypoints <= FULLY_CONNECTED_UP_TO:
            pairs = {(a, b) for a in range(n_keypoints) for b in range(a + 1, n_keypoints)}
        else:
            pairs = {(a, a + 1) for a in range(n_keypoints - 1)}
    return sorted(pairs)


def adjacency_matrix(pairs: list[tuple[int, int]], n_keypoints: int) -> torch.Tensor:
    a = torch.zeros(n_keypoints, n_keypoints)
    for i, j in pairs:
        a[i, j] = a[j, i] = 1.0
    return a


def scaled_cosine_error(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    selected: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """GraphMAE's SCE, (1/|Ṽ|) Σ_{i∈Ṽ} (1 - cos(x_i, y_i))^gamma, over node features (..., F).

    ``weight`` (..., F) is 1 for tracked values and 0 for missing ones: both vectors are
    compared on the tracked values only. Ṽ = ``selected`` nodes whose target is not ~0 (a zero
    vector has no direction). Returns 0 (still differentiable) when Ṽ is empty."""
    p = pred.float() * weight
    t = target.float() * weight
    t_norm = t.norm(dim=-1)
    cos = (p * t).sum(-1) / (p.norm(dim=-1).clamp_min(COSINE_EPS) * t_norm.clamp_min(COSINE_EPS))
    err = (1.0 - cos).clamp_min(0.0) ** gamma
    include = (selected & (t_norm > COSINE_EPS)).float()
    return (err * include).sum() / include.sum().clamp_min(1.0)


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last (feature) axis of a (..., D) tensor of node features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class GINConv(nn.Module):
    """Graph isomorphism convolution: h_i' = MLP((1 + eps)·h_i + Σ_{j∈N(i)} h_j), eps learnable
    (GIN-eps), MLP = Linear -> BN -> ReLU -> Linear. Works on (..., V, D)."""

    def __init__(self, adjacency: torch.Tensor, in_dim: int, out_dim: int):
        super().__init__()
        self.register_buffer("adjacency", adjacency.clone(), persistent=False)
        self.eps = nn.Parameter(torch.zeros(()))
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, out_dim),
            TokenBatchNorm(out_dim),
            nn.ReLU(),
            nn.Linear(out_dim, out_dim),
        )

    def aggregate(self, h: torch.Tensor) -> torch.Tensor:
        neighbours = torch.einsum("uv,...vd->...ud", self.adjacency.to(h.dtype), h)
        return (1.0 + self.eps.to(h.dtype)) * h + neighbours

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.aggregate(h))


class TemporalMixing(nn.Module):
    """h + ReLU(BN(Conv1d_dilated(h) + W·mean_t(h))), each joint separately: the light temporal
    model standing in for the paper's STRL stage. The convolution reaches neighbouring patches
    (dilation doubling with depth); the mean over the window's patches gives every node its
    joint's window-level context (where that keypoint usually sits in this window)."""

    def __init__(self, dim: int, kernel: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.norm = TokenBatchNorm(dim)
        self.context = nn.Linear(dim, dim, bias=False)

    def convolve(self, h: torch.Tensor) -> torch.Tensor:
        """``self.conv`` along TP of (B, TP, V, D), as one matmul of the K shifted copies
        stacked on D: the same numbers as the Conv1d, without its two layout copies (a bf16
        step ~10 % faster at 2 threads, the same on one)."""
        k, = self.conv.kernel_size
        step, = self.conv.dilation
        pad, = self.conv.padding
        tp = h.shape[1]
        padded = F.pad(h, (0, 0, 0, 0, pad, pad))
        taps = torch.cat([padded[:, j * step: j * step + tp] for j in range(k)], dim=-1)
        weight = self.conv.weight.permute(0, 2, 1).reshape(self.conv.out_channels, -1)
        return F.linear(taps, weight, self.conv.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.convolve(h) + self.context(h.mean(1, keepdim=True))
        return h + F.relu(self.norm(y))


def _temporal(dim: int, kernel: int, dilation: int = 1) -> nn.Module:
    return TemporalMixing(dim, kernel, dilation) if kernel > 1 else nn.Identity()


class GraphEncoder(nn.Module):
    """[MASK] in place -> Linear + keypoint embedding -> L x (GIN, BN+ReLU, residual, temporal
    mixing with dilation 2^l) -> MLP -> BN+ReLU -> GIN = H."""

    def __init__(self, adjacency: torch.Tensor, in_dim: int, dim: int, layers: int, kernel: int,
                 additive_mask: bool = False):
        super().__init__()
        n_keypoints = adjacency.shape[0]
        self.additive_mask = additive_mask  # [MASK] added to (not replacing) a hidden node
        # interpolated inputs mix O(1) positions with residuals ~100x smaller: standardise
        # every input value first, so the small ones are not drowned in the first layer
        self.input_norm = TokenBatchNorm(in_dim, affine=False) if additive_mask else None
        self.mask_token = nn.Parameter(torch.zeros(in_dim))
        self.embed = nn.Linear(in_dim, dim)
        self.keypoint_embed = nn.Parameter(trunc_normal_(torch.zeros(n_keypoints, dim)))
        self.gins = nn.ModuleList(GINConv(adjacency, dim, dim) for _ in range(layers))
        self.norms = nn.ModuleList(TokenBatchNorm(dim) for _ in range(layers))
        self.temporal = nn.ModuleList(_temporal(dim, kernel, 2**i) for i in range(layers))
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.mlp_norm = TokenBatchNorm(dim)
        self.out = GINConv(adjacency, dim, dim)

    def forward(self, features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Node features (B, TP, V, F), hidden (B, TP, V) -> H (B, TP, V, D)."""
        if self.input_norm is not None:
            features = self.input_norm(features)
        token = self.mask_token.to(features.dtype)
        h = torch.where(hidden.unsqueeze(-1), features + token if self.additive_mask else token,
                        features)
        h = self.embed(h) + self.keypoint_embed
        for gin, norm, temporal in zip(self.gins, self.norms, self.temporal):
            h = temporal(h + F.relu(norm(gin(h))))
        return self.out(F.relu(self.mlp_norm(self.mlp(h))))


class GraphDecoder(nn.Module):
    """Re-mask -> temporal mixing -> one GIN layer -> ReLU -> Linear to the P*C node values."""

    def __init__(
        self, adjacency: torch.Tensor, dim: int, out_dim: int, kernel: int, remask: bool
    ):
        super().__init__()
        self.remask = remask
        self.temporal = _temporal(dim, kernel)
        self.gin = GINConv(adjacency, dim, dim)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, h: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        if self.remask:
            h = h.masked_fill(hidden.unsqueeze(-1), 0.0)
        return self.head(F.relu(self.gin(self.temporal(h))))


def check_config(config: Config, spec: ModelSpec) -> None:
    """Refuse hyperparameters that cannot build, naming the option."""
    if config.patch < 1 or spec.n_frames % config.patch:
        raise SkelmaeError(
            f"skeletonmae: patch={config.patch} must divide the window length {spec.n_frames}"
        )
    if config.dim < 1 or config.gin_layers < 0:
        raise SkelmaeError(
            f"skeletonmae: dim={config.dim} must be >= 1 and gin_layers={config.gin_layers} >= 0"
        )
    if config.temporal_kernel < 1 or config.temporal_kernel % 2 == 0:
        raise SkelmaeError(
            f"skeletonmae: temporal_kernel={config.temporal_kernel} must be odd and >= 1 "
            "(1 = no temporal mixing)"
        )
    if not 0.0 < config.mask_ratio < 1.0:
        raise SkelmaeError(f"skeletonmae: mask_ratio must be in (0, 1), got {config.mask_ratio}")
    if config.gamma < 1.0:
        raise SkelmaeError(f"skeletonmae: gamma must be >= 1, got {config.gamma}")
    check_fill_options("skeletonmae", config)
    if config.masking not in MASKINGS:
        raise SkelmaeError(
            f"skeletonmae: masking must be one of {MASKINGS}, got {config.masking!r}"
        )
    for name in ("frame_mask_ratio", "joint_mask_ratio"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise SkelmaeError(
                f"skeletonmae: {name} must be in [0, 1), got {getattr(config, name)}"
            )
    if config.coord_weight < 0.0 or config.part_size < 1:
        raise SkelmaeError(
            f"skeletonmae: coord_weight={config.coord_weight} must be >= 0 and "
            f"part_size={config.part_size} >= 1"
        )


class Model(MaskedSkeletonModel):
    """SkeletonMAE; ``encode`` gives H for every (temporal patch, keypoint) node."""

    name: ClassVar[str] = "skeletonmae"
    Config: ClassVar[type] = Config
    reconstructs_coordinates: ClassVar[bool] = True
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {},
        "small": dict(dim=32, gin_layers=2),
        # for model.impute: MSAE's per-frame masking, interpolation in, correction out,
        # trained on the distance (docs/methods/skeletonmae.md, Imputation)
        "impute": dict(masking="two_stage", fill="interpolate", coord_loss="distance",
                       gap_ratio=0.5),
        # The ICCV'23 setting as far as it is known: per-frame graphs (P=1), no temporal model
        # in pre-training, GraphMAE's gamma=3 and re-mask. Width, depth and mask ratio are
        # unverified (GraphMAE-like values); coord_weight stays on so reconstruct has a scale.
        "paper": dict(patch=1, dim=256, gin_layers=3, temporal_kernel=1, mask_ratio=0.5,
                      gamma=3.0, coord_weight=0.1, remask=True),
    }

    def __init__(self, spec: ModelSpec, config: Config):
        super().__init__(spec, config)
        check_config(config, spec)
        v, c, p = spec.n_keypoints, spec.n_channels, config.patch
        self.graph_edges = skeleton_graph(spec.edges, v)
        self.parts = body_parts(self.graph_edges, v, config.part_size)
        adjacency = adjacency_matrix(self.graph_edges, v)
        self.encoder = GraphEncoder(
            adjacency, p * (c + 1) + (2 * p * c if config.fill == "interpolate" else 0),
            config.dim, config.gin_layers, config.temporal_kernel,
            additive_mask=config.fill == "interpolate",
        )
        self.decoder = GraphDecoder(
            adjacency, config.dim, p * c, config.temporal_kernel, config.remask
        )

    def node_features(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, V, C) -> (B, TP, V, P*(C+1)): each keypoint's P frames of coordinates (0
        where not ``valid``) followed by the P validity flags, so a gap is not read as a
        point at the egocentric origin. With ``fill="interpolate"``, (B, TP, V, P*(3C+1)):
        the interpolation of the ``valid`` frames as deviations from the keypoint's window
        mean, that mean, the seen entries' leave-one-out interpolation residuals, then the
        flags (``fill.interpolated_input``)."""
        return self._features(x, valid)[1]

    def _features(
        self, x: torch.Tensor, seen: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(prior or None, node features); the prior is the interpolation (B, TP, V, P*C)."""
        p = self.config.patch
        flags = patchify(seen.unsqueeze(-1).to(x.dtype), p)
        if self.config.fill == "interpolate":
            prior, shown = interpolated_input(x, seen)
            return patchify(prior, p), torch.cat([patchify(shown, p), flags.float()], dim=-1)
        coords = patchify(torch.where(seen.unsqueeze(-1), x, torch.zeros_like(x)), p)
        return None, torch.cat([coords, flags], dim=-1)

    def predict(self, x: torch.Tensor, seen: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Node outputs (B, TP, V, P*C), float32, given the ``seen`` frames and the
        ``hidden`` nodes; with ``fill="interpolate"`` a correction added (in float32) to the
        interpolation."""
        prior, features = self._features(x, seen)
        out = self.decoder(self.encoder(features, hidden), hidden).float()
        return out if prior is None else out + prior

    def mask(
        self, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Body-part mask (B, TP, V), drawn per temporal patch; untracked nodes always hidden."""
        tok_valid = token_validity(valid, self.config.patch)
        b, tp, v = tok_valid.shape
        return graph_part_mask(
            b, tp, v, self.parts, self.config.mask_ratio, valid=tok_valid, generator=generator
        )

    def loss(
        self, x: torch.Tensor, valid: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        self._check(x, valid)
        p, c = self.config.patch, self.spec.n_channels
        with torch.no_grad():
            if self.config.masking == "two_stage":
                b, t, v = valid.shape
                entry_hidden, _ = two_stage_mask(
                    b, t, v, self.config.frame_mask_ratio, self.config.joint_mask_ratio,
                    valid=valid, generator=generator,
                )
                entry_hidden = mix_in_gaps(entry_hidden, self.config.gap_ratio,
                                           self.config.gap_fraction, generator)
                seen = valid & ~entry_hidden
                hidden = ~token_validity(seen, p)  # nothing left in the node: [MASK]
                targets = valid & entry_hidden  # every hidden tracked entry
            else:
                hidden = self.mask(valid, generator)
                targets = valid & hidden.repeat_interleave(p, dim=1)
                seen = valid & ~targets  # a hidden node shows nothing (not even interpolated)
            target = patchify(torch.where(valid.unsqueeze(-1), x, torch.zeros_like(x)).float(), p)
            weight = patchify(valid.unsqueeze(-1).expand(*valid.shape, c).float(), p)
            entry_weight = patchify(targets.unsqueeze(-1).expand(*valid.shape, c).float(), p)
            selected = hidden & token_validity(valid, p)
        pred = self.predict(x, seen, hidden).float()
        sce = scaled_cosine_error(pred, target, weight, selected, self.config.gamma)
        mse = (((pred - target) ** 2) * entry_weight).sum() / entry_weight.sum().clamp_min(1.0)
        coord = mse
        if self.config.coord_loss == "distance":
            dist = entry_error(unpatchify(pred, p, c), unpatchify(target, p, c), "distance")
            on = targets.float()
            coord = (dist * on).sum() / on.sum().clamp_min(1.0)
        loss = sce + self.config.coord_weight * coord
        return {"loss": loss, "sce": sce.detach(), "coord_mse": mse.detach()}

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        self._check(x, valid)
        hidden = ~token_validity(valid, self.config.patch)
        return self.encoder(self.node_features(x, valid), hidden)

    def reconstruct(
        self, x: torch.Tensor, valid: torch.Tensor, masked: torch.Tensor
    ) -> torch.Tensor:
        """Coordinates for every entry. Trained with ``"parts"`` masking, a node is hidden as
        a whole when any of its P frames is ``masked`` or none is tracked: that is the
        situation its decoder was trained on. Trained with ``"two_stage"`` masking, a node
        keeps its seen frames (the others flagged missing) and only a node with none takes
        [MASK]."""
        self._check(x, valid)
        if masked.shape != valid.shape:
            raise SkelmaeError(
                f"masked has shape {tuple(masked.shape)}, expected {tuple(valid.shape)}"
            )
        p = self.config.patch
        if self.config.masking == "two_stage":
            seen = valid & ~masked
            hidden = ~token_validity(seen, p)
        else:
            hidden = token_validity(masked, p) | ~token_validity(valid, p)
            seen = valid & ~hidden.repeat_interleave(p, dim=1)
        return unpatchify(self.predict(x, seen, hidden).float(), p, self.spec.n_channels)
