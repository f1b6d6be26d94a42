"""A trained masked skeleton model and everything needed to use it on new tracks.

:class:`SkeletonModel` bundles the network with the facts it was trained under (window
configuration, egocentric normalisation, keypoint names, skeleton, hyperparameters, training
history), so that new recordings are cut into windows exactly as the training ones were.

The model file (suffix ``.skelmae``) is ONE safetensors file: the network's tensors plus a
JSON description in the safetensors metadata header under the key ``"skelmae"``. Loading it
never unpickles anything (safetensors cannot hold code), so a model file from a stranger can at
worst fail to load, never run code. See docs/pretraining.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import SkelmaeError
from .models import MaskedSkeletonModel, ModelSpec, build_model, model_class
from .tracks import PoseTracks
from .windows import (
    Normalisation,
    TimeGrid,
    WindowConfig,
    denormalise_window,
    iter_windows,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "SkeletonModel", "load_model", "read_metadata"]

logger = logging.getLogger(__name__)

#: what the ``"skelmae"`` metadata entry says it is, and the layout version of that entry
FORMAT = "napari-skelmae model"
FORMAT_VERSION = 1
#: metadata key of the model description, and of the extra state a training checkpoint holds
METADATA_KEY = "skelmae"
CHECKPOINT_KEY = "skelmae_checkpoint"
#: tensors whose names start with this belong to a checkpoint's trainer, not to the network
TRAINER_PREFIX = "__trainer__."


class SkeletonModel:
    """A trained network plus the window setup, skeleton and history it was trained with.

    Build one with :func:`napari_skelmae.pretrain` or :func:`load_model`; ``net`` is the
    :class:`~napari_skelmae.models.MaskedSkeletonModel` (an ``nn.Module``).
    """

    def __init__(
        self,
        net: MaskedSkeletonModel,
        *,
        method: str,
        preset: str | None,
        window: WindowConfig,
        normalisation: Normalisation,
        edges: list[tuple[str, str]] | None = None,
        history: dict[str, Any] | None = None,
        package_version: str | None = None,
        keypoint_map: Mapping[str, str] | None = None,
    ):
        if tuple(normalisation.keypoint_names) and len(normalisation.keypoint_names) != (
            net.spec.n_keypoints
        ):
            raise SkelmaeError(
                f"the normalisation names {len(normalisation.keypoint_names)} keypoints, the "
                f"network was built for {net.spec.n_keypoints}"
            )
        self.net = net
        self.method = method
        self.preset = preset
        self.window = window
        self.normalisation = normalisation
        self.edges = [tuple(e) for e in (edges or [])]
        self.history = dict(history or {})
        if package_version is None:
            from . import __version__ as package_version
        self.package_version = package_version
        self.keypoint_map = dict(keypoint_map) if keypoint_map else None

    # ---- facts -------------------------------------------------------------------------
    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return tuple(self.normalisation.keypoint_names)

    @property
    def spec(self) -> ModelSpec:
        return self.net.spec

    @property
    def config(self) -> dict[str, Any]:
        """The network's hyperparameters (every field of the method's Config)."""
        return _jsonable(dataclasses.asdict(self.net.config))

    @property
    def reconstructs_coordinates(self) -> bool:
        return bool(self.net.reconstructs_coordinates)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> SkeletonModel:
        self.net.to(device)
        return self

    @property
    def model_id(self) -> str:
        """Fingerprint of the current weights (what embeddings remember as their origin)."""
        from .inference import model_fingerprint

        return model_fingerprint(self.net)

    def embed(self, tracks: PoseTracks, **kwargs: Any):
        """Per-frame embeddings (frames, individuals, D), NaN where an animal is absent; see
        :func:`napari_skelmae.inference.embed` for the options."""
        from .inference import embed

        return embed(self, tracks, **kwargs)

    def __repr__(self) -> str:
        steps = self.history.get("steps")
        trained = f", {steps} steps" if steps is not None else ""
        return (
            f"SkeletonModel({self.method}{f' preset {self.preset}' if self.preset else ''}, "
            f"{self.spec.n_keypoints} keypoints x {self.spec.n_channels}D, "
            f"{self.spec.n_frames} frames at {self.window.model_fps:g} Hz{trained})"
        )

    def describe(self) -> dict[str, Any]:
        """The JSON description stored in the model file."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": self.package_version,
            "method": self.method,
            "preset": self.preset,
            "config": self.config,
            "spec": self.spec.to_dict(),
            "window": self.window.to_dict(),
            "normalisation": self.normalisation.to_dict(),
            "keypoint_names": list(self.keypoint_names),
            "edges": [list(e) for e in self.edges],
            "history": self.history,
        }

    # ---- file --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file (safetensors, atomically: a temp file then ``os.replace``)."""
        path = Path(path)
        write_safetensors(path, network_tensors(self.net), {METADATA_KEY: self.describe()})
        return path

    # ---- tracks ------------------------------------------------------------------------
    def check_compatible(
        self, tracks: PoseTracks, keypoint_map: Mapping[str, str] | None = None
    ) -> PoseTracks:
        """``tracks`` with exactly the model's keypoints, in the model's order and names.

        Without a map the keypoint names must match (any order); ``keypoint_map``
        ``{model keypoint: tracks keypoint}`` selects and renames (it defaults to the map given
        to :func:`load_model`). Refuses, naming the missing and extra keypoints, otherwise.
        """
        if not isinstance(tracks, PoseTracks):
            raise SkelmaeError(f"expected PoseTracks, got {type(tracks).__name__}")
        where = f" in {tracks.source_path}" if tracks.source_path else ""
        if tracks.n_space != self.spec.n_channels:
            raise SkelmaeError(
                f"the model was trained on {self.spec.n_channels}D tracks, the tracks{where} "
                f"are {tracks.n_space}D"
            )
        mapping = dict(keypoint_map or self.keypoint_map or {})
        model_names, names = self.keypoint_names, tuple(tracks.keypoint_names)
        unknown = sorted(set(mapping) - set(model_names))
        if unknown:
            raise SkelmaeError(
                f"keypoint_map names model keypoints {unknown} that the model does not have; "
                f"model keypoints: {list(model_names)}"
            )
        wanted = [mapping.get(k, k) for k in model_names]
        missing = [w for w in wanted if w not in names]
        if missing:
            extra = [n for n in names if n not in wanted]
            raise SkelmaeError(
                f"the tracks{where} do not have the model's keypoints: missing {missing}, "
                f"extra {extra}; pass keypoint_map={{model keypoint: tracks keypoint}} to "
                f"match them (model keypoints: {list(model_names)})"
            )
        if len(set(wanted)) != len(wanted):
            raise SkelmaeError(f"keypoint_map uses a tracks keypoint twice: {mapping}")
        if not mapping and len(names) != len(model_names):
            extra = [n for n in names if n not in model_names]
            raise SkelmaeError(
                f"the tracks{where} have extra keypoints {extra} the model was not trained "
                "on; pass keypoint_map={model keypoint: tracks keypoint} to select the "
                "model's ones"
            )
        selected = tracks if wanted == list(names) else tracks.sel(keypoints=wanted)
        if wanted != list(model_names):
            selected = selected.replace(keypoint_names=list(model_names))
        return selected

    def impute(
        self,
        tracks: PoseTracks,
        confidence_threshold: float | None = None,
        *,
        keypoint_map: Mapping[str, str] | None = None,
        stride_frames: int | None = None,
        batch_size: int = 64,
    ) -> PoseTracks:
        """Fill missing keypoints (and, with a threshold, those scored below it) from the model.

        Each individual is cut into overlapping windows (every model frame covered, stride
        a quarter window by default); the entries to fill are hidden from the network, which
        reconstructs them; predictions are put back into the tracks' coordinates, averaged
        where windows overlap (weighted towards the middle of each window, where a frame has
        context on both sides) and interpolated from the model's time grid to the source
        frames. Observed points are returned unchanged; filled points get confidence NaN.

        With one reference per frame (``WindowConfig.reference="frame"``), a frame whose
        centre or heading keypoint is to be filled is hidden whole and placed back with a
        reference interpolated from the window's other frames; with ``reference="window"``
        every kept entry reaches the network (docs/methods/msae.md, Imputation). Needs a
        method that reconstructs coordinates (msae, skeletonmae): MAMP predicts motion and
        Skeleton2vec features.
        """
        if not self.reconstructs_coordinates:
            what = "motion (frame-to-frame differences)" if self.method == "mamp" else (
                "the features of a teacher network" if self.method == "skeleton2vec"
                else "no coordinates"
            )
            raise SkelmaeError(
                f"a {self.method} model cannot impute keypoints: it was trained to predict "
                f"{what}, not positions; train an 'msae' or 'skeletonmae' model to fill gaps"
            )
        if confidence_threshold is not None and not (
            isinstance(confidence_threshold, (int, float, np.number))
            and np.isfinite(confidence_threshold)
        ):
            raise SkelmaeError(
                f"confidence_threshold must be a number or None, got {confidence_threshold!r}"
            )
        mapped = self.check_compatible(tracks, keypoint_map)
        if mapped.n_frames == 0:
            raise SkelmaeError("the tracks have no frames to impute")
        to_fill = mapped.missing.copy()
        if confidence_threshold is not None:
            with np.errstate(invalid="ignore"):
                to_fill |= mapped.confidence < confidence_threshold
        # the network sees only what is kept; no gap bridging: every hole is its to fill
        holed = mapped.replace(positions=np.where(to_fill[..., None], np.nan, mapped.positions))
        config = dataclasses.replace(self.window, max_gap_s=0.0, confidence_threshold=None)
        grid = TimeGrid.of(mapped, config)
        stride = stride_frames or max(1, config.n_frames // 4)
        positions = mapped.positions.copy()
        filled = np.zeros_like(to_fill)
        for individual in range(mapped.n_individuals):
            if not to_fill[:, individual].any():
                continue
            values, have = self._grid_predictions(
                holed, individual, config, grid, stride, batch_size
            )
            rows, rows_have = grid_to_rows(values, have, grid, mapped.frame_index)
            take = to_fill[:, individual] & rows_have
            positions[:, individual][take] = rows[take]
            filled[:, individual] = take
        n_left = int((to_fill & ~filled).sum())
        if n_left:
            logger.info("impute: %d of %d points left missing (no window around them saw "
                        "the keypoint, or had a reference frame)", n_left, int(to_fill.sum()))
        return self._write_back(tracks, positions, filled, keypoint_map)

    def _grid_predictions(
        self, holed: PoseTracks, individual: int, config: WindowConfig, grid: TimeGrid,
        stride: int, batch_size: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reconstructed source coordinates on the model grid (G, V, C), averaged over the
        windows covering each model frame (weighted by ``window_weights``), and whether an
        entry has any (G, V). ``holed``: the tracks with every entry to fill missing."""
        v = self.spec.n_keypoints
        shape = (grid.n_frames, (v, self.spec.n_channels), (v,))
        accumulator = GridAverage(*shape)
        # fill="interpolate": a window brackets an entry when it sees the keypoint before and
        # after it; those guesses win over one-sided ones (the prior there only holds the
        # last seen value), which are kept for entries nothing brackets (recording ends)
        bracketing = GridAverage(*shape) if self.net.needs_own_track else None
        weights = window_weights(config.n_frames)
        device = self.device
        for batch in self.sliding_windows(holed, individual, config, stride, batch_size):
            x, valid = batch["x"].to(device), batch["valid"].to(device)
            with torch.no_grad():
                pred = self.net.reconstruct(x, valid, ~valid).float().cpu().numpy()
            center, angle = fill_references(batch["center"].numpy(), batch["angle"].numpy())
            coords = denormalise_window(pred, center, angle, batch["scale"].numpy())
            present = np.isfinite(coords).all(axis=-1)  # (B, T, V)
            starts = batch["model_start"].numpy()
            if bracketing is not None:
                seen = batch["valid"].numpy()
                before = np.logical_or.accumulate(seen, axis=1)
                after = np.logical_or.accumulate(seen[:, ::-1], axis=1)[:, ::-1]
                # a keypoint seen nowhere in the window: its prior is the window's centre
                present &= seen.any(axis=1)[:, None, :]
                bracketing.add(starts, coords, present & before & after, weights)
            accumulator.add(starts, coords, present, weights)
        values, have = accumulator.mean()
        if bracketing is not None:
            inner, inner_have = bracketing.mean()
            values = np.where(inner_have[..., None], inner, values)
        return values, have

    def sliding_windows(
        self, tracks: PoseTracks, individual: int, config: WindowConfig | None = None,
        stride_frames: int | None = None, batch_size: int = 64,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of windows of one individual of model-compatible ``tracks`` covering every
        model frame (the shared front end of imputation and embedding)."""
        config = config or self.window
        stride = stride_frames or max(1, config.n_frames // 2)
        self.net.eval()
        yield from iter_windows(tracks, config, self.normalisation, individual,
                                stride_frames=stride, batch_size=batch_size)

    def _write_back(
        self, original: PoseTracks, positions: np.ndarray, filled: np.ndarray,
        keypoint_map: Mapping[str, str] | None,
    ) -> PoseTracks:
        """The original tracks (all keypoints) with the filled points replaced; ``positions``
        and ``filled`` are in the model's keypoint order, rows as in ``original``."""
        mapping = dict(keypoint_map or self.keypoint_map or {})
        columns = [original.keypoint_names.index(mapping.get(k, k)) for k in self.keypoint_names]
        out_pos = original.positions.copy()
        out_conf = original.confidence.copy()
        for j, col in enumerate(columns):
            take = filled[:, :, j]
            out_pos[:, :, col][take] = positions[:, :, j][take]
            out_conf[:, :, col][take] = np.nan
        metadata = dict(original.metadata)
        metadata["imputed"] = {"method": self.method, "points": int(filled.sum())}
        return original.replace(positions=out_pos, confidence=out_conf, metadata=metadata)


# ------------------------------------------------------------------------- grid helpers
class GridAverage:
    """Per-model-frame average of window outputs: overlapping windows are averaged (with
    optional weights by position in the window). Presence is per frame, or per entry of a
    frame (e.g. per keypoint: ``present_shape``)."""

    def __init__(self, n_frames: int, shape: tuple[int, ...],
                 present_shape: tuple[int, ...] = ()):
        self.total = np.zeros((n_frames, *shape), np.float64)
        self.count = np.zeros((n_frames, *present_shape), np.int64)
        self.weight = np.zeros((n_frames, *present_shape), np.float64)

    def add(self, model_start: np.ndarray, values: np.ndarray, present: np.ndarray,
            weights: np.ndarray | None = None) -> None:
        """``values`` (B, T, ...) of windows starting at ``model_start`` (B,); only what
        ``present`` (B, T, *present_shape) marks counts, each with ``weights`` (T,) by its
        place in the window (default 1). Frames off the grid (padding) are dropped."""
        n = len(self.count)
        frames = model_start[:, None] + np.arange(values.shape[1])
        on_grid = (frames >= 0) & (frames < n)
        extra = values.ndim - present.ndim  # value axes beyond the presence axes
        # one offset at a time: the starts of a batch differ, so each fancy-indexed add has
        # unique indices (np.add.at would be ~10x slower)
        for j in range(values.shape[1]):
            sel = on_grid[:, j]
            rows = frames[sel, j]
            here = present[sel, j]
            w = 1.0 if weights is None else float(weights[j])
            mask = here.reshape(here.shape + (1,) * extra)
            self.total[rows] += np.where(mask, values[sel, j], 0.0) * w
            self.count[rows] += here
            self.weight[rows] += here * w

    def mean(self) -> tuple[np.ndarray, np.ndarray]:
        """(average (G, ...) NaN where nothing counted, have (G, *present_shape))."""
        have = self.count > 0
        extra = self.total.ndim - have.ndim
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (self.total / self.weight.reshape(self.weight.shape + (1,) * extra))
        out = np.where(have.reshape(have.shape + (1,) * extra), out, np.nan)
        return out.astype(np.float32), have


def window_weights(n_frames: int) -> np.ndarray:
    """Weights (T,) of a window's frames when overlapping windows are averaged for
    imputation: a Hann bump, so a frame counts most from the windows where it has context on
    both sides (never 0, so the first and last frames of a recording still count)."""
    return np.sin(np.pi * (np.arange(n_frames) + 0.5) / n_frames) ** 2


def grid_to_rows(
    values: np.ndarray, have: np.ndarray, grid: TimeGrid, frame_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Values on the model grid (G, ...) at the source rows ``frame_index`` (N,): linear
    interpolation between the two model frames around each row (``TimeGrid.neighbours``).
    A row is available only when the frames it needs are."""
    left, right, weight, inside = grid.neighbours(frame_index)
    weight = weight.reshape(-1, *[1] * (values.ndim - 1))
    inside = inside.reshape(inside.shape + (1,) * (have.ndim - 1))
    ok = inside & have[left] & have[right]  # (N,) or (N, *have.shape[1:])
    out = values[left] * (1 - weight) + values[right] * weight
    out[~ok] = np.nan
    return out.astype(np.float32), ok


def fill_references(center: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (B, T, C) and angles (B, T) with reference-less frames (NaN) interpolated
    linearly from the window's frames that have one (angles unwrapped; held constant past
    the ends). A window with no reference at all stays NaN."""
    center, angle = center.copy(), angle.copy()
    t = np.arange(angle.shape[1])
    for b in range(angle.shape[0]):
        ok = np.isfinite(angle[b]) & np.isfinite(center[b]).all(-1)
        if ok.all() or not ok.any():
            continue
        angle[b] = np.interp(t, t[ok], np.unwrap(angle[b, ok]))
        for c in range(center.shape[-1]):
            center[b, :, c] = np.interp(t, t[ok], center[b, ok, c])
    return center, angle


# ------------------------------------------------------------------------------- files
def network_tensors(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's state as contiguous CPU tensors that share no memory (safetensors)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}


def write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Write atomically: a temp file in the same folder, then ``os.replace``."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file(tensors, tmp, metadata={k: json.dumps(v) for k, v in metadata.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_safetensors(
    path: str | os.PathLike, with_tensors: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """CPU tensors (none unless ``with_tensors``) and the decoded skelmae metadata entries of
    a file; SkelmaeError naming the file and the problem for anything that is not ours."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SkelmaeError(f"'{path}': no such model file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except Exception as e:  # safetensors raises its own error types for bad headers/data
        problem = str(e).strip() or type(e).__name__
        hint = " (a pickled torch file?)" if _looks_like_pickle(path) else ""
        raise SkelmaeError(
            f"'{path}' is not a readable napari-skelmae model file{hint}: {problem}"
        ) from None
    if METADATA_KEY not in raw:
        raise SkelmaeError(
            f"'{path}' is a safetensors file but not a napari-skelmae model: its header has no "
            f"'{METADATA_KEY}' description"
        )
    meta: dict[str, Any] = {}
    for key in (METADATA_KEY, CHECKPOINT_KEY):
        if key in raw:
            try:
                meta[key] = json.loads(raw[key])
            except json.JSONDecodeError as e:
                raise SkelmaeError(f"'{path}': the '{key}' description is not JSON: {e}") from None
    return tensors, meta


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] in (b"\x80\x02", b"\x80\x04", b"\x80\x05") or head == b"PK\x03\x04"


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON description of a model file without building the network."""
    return _checked_description(Path(path), read_safetensors(path, False)[1][METADATA_KEY])


def _checked_description(path: Path, meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SkelmaeError(f"'{path}': the '{METADATA_KEY}' description is not a {FORMAT}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SkelmaeError(
            f"'{path}': model file layout version {version!r} is newer than this napari-skelmae "
            f"reads ({FORMAT_VERSION}); update napari-skelmae"
        )
    needed = ("method", "config", "spec", "window", "normalisation")
    absent = [k for k in needed if k not in meta]
    if absent:
        raise SkelmaeError(f"'{path}': the model description lacks {absent}")
    return meta


def model_from_description(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor], path: Path,
    keypoint_map: Mapping[str, str] | None = None,
) -> SkeletonModel:
    """Rebuild the network from the description and load its tensors (strictly)."""
    try:
        model_class(meta["method"])
        spec = ModelSpec.from_dict(meta["spec"])
        net = build_model(meta["method"], spec, **meta["config"])
        window = WindowConfig.from_dict(meta["window"])
        normalisation = Normalisation.from_dict(meta["normalisation"])
    except SkelmaeError as e:
        raise SkelmaeError(f"'{path}': {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise SkelmaeError(f"'{path}': malformed model description: {e!r}") from None
    state = {k: v for k, v in tensors.items() if not k.startswith(TRAINER_PREFIX)}
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise SkelmaeError(
            f"'{path}': the tensors do not fit a {meta['method']} network with this "
            f"configuration: missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape "
            f"{wrong[:5]}"
        )
    net.load_state_dict(state)
    net.eval()
    return SkeletonModel(
        net,
        method=meta["method"],
        preset=meta.get("preset"),
        window=window,
        normalisation=normalisation,
        edges=[tuple(e) for e in meta.get("edges", [])],
        history=meta.get("history") or {},
        package_version=meta.get("package_version"),
        keypoint_map=keypoint_map,
    )


def load_model(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    keypoint_map: Mapping[str, str] | None = None,
) -> SkeletonModel:
    """Load a ``.skelmae`` model file (or a training checkpoint) without unpickling anything.

    ``keypoint_map`` ``{model keypoint: tracks keypoint}`` is remembered for tracks whose
    keypoints are named differently. A corrupted, truncated or foreign file raises
    SkelmaeError naming the file and the problem.
    """
    path = Path(path)
    tensors, meta = read_safetensors(path)
    description = _checked_description(path, meta[METADATA_KEY])
    return model_from_description(description, tensors, path, keypoint_map).to(map_location)


def _jsonable(value: Any) -> Any:
    """Tuples to lists, recursively (what JSON gives back, so configs compare equal)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
