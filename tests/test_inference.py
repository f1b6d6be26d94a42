"""Per-frame embeddings on real recordings: shape, the NaN contract, windows averaged per frame,
batch independence, the model fingerprint. Weights barely matter for these contracts, so the
networks are tiny and trained for a handful of steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_skelmae import SkelmaeError, load_tracks, merge_fragmented_tracks
from napari_skelmae.inference import Embeddings
from napari_skelmae.training import pretrain
from napari_skelmae.windows import TimeGrid

from .conftest import data_path

TINY_MAMP = dict(dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)
WINDOW = dict(window_s=16 / 30, stride_s=8 / 30)


def _tiny(tracks, **window):
    return pretrain(tracks, "mamp", max_steps=3, batch_size=8, precision="float32",
                    window={**WINDOW, **window}, val_fraction=0.0, **TINY_MAMP)


@pytest.fixture(scope="module")
def mouse():
    # one mouse, 4 bodyparts, 2330 frames at 30 fps: model frames are video frames
    return load_tracks(data_path("dlc_openfield", "predictions",
                                 "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5"), fps=30)


@pytest.fixture(scope="module")
def flies():
    return load_tracks(data_path("sleap_analysis_example", "predictions.slp"))


def test_shape_dtype_and_fingerprint(flies):
    model = _tiny(flies)
    emb = model.embed(flies)
    assert isinstance(emb, Embeddings) and isinstance(emb, np.ndarray)
    assert emb.shape == (flies.n_frames, flies.n_individuals, model.net.feature_dim)
    assert emb.dtype == np.float32
    assert emb.model_id == model.model_id
    assert emb[10:20].model_id == model.model_id  # slicing keeps the origin
    present = ~flies.missing.all(axis=2)
    assert np.isfinite(emb[present]).all(axis=-1).mean() > 0.99
    # another model (other weights) has another fingerprint
    other = pretrain(flies, "mamp", max_steps=3, batch_size=8, precision="float32", seed=1,
                     window=WINDOW, val_fraction=0.0, **TINY_MAMP)
    assert other.model_id != model.model_id


def test_nan_exactly_where_the_animal_is_absent():
    # fragmented SLEAP tracks joined into 2 flies: frames where one fly is lost are real
    tracks = merge_fragmented_tracks(
        load_tracks(data_path("sleap_centered_pair", "centered_pair_predictions.slp")))
    present = ~tracks.missing.all(axis=2)
    assert (~present).any() and present.any()
    emb = _tiny(tracks).embed(tracks)
    finite = np.isfinite(emb).all(axis=-1)
    assert np.isnan(emb).all(axis=-1)[finite == False].all()  # noqa: E712  rows are all-NaN or finite
    assert not finite[~present].any()  # absent -> NaN
    assert finite[present].mean() > 0.95  # present -> an embedding (but for reference-less rows)


def test_each_frame_averages_the_windows_covering_it(mouse):
    model = _tiny(mouse)
    assert mouse.fps == model.window.model_fps == 30  # model frame k = row k
    stride = 4
    emb = model.embed(mouse, stride_frames=stride)
    T = model.window.n_frames
    # by hand: every window's per-frame features, summed per model frame
    grid = TimeGrid.of(mouse, model.window)
    total = np.zeros((grid.n_frames, emb.shape[-1]))
    count = np.zeros(grid.n_frames)
    for batch in model.sliding_windows(mouse, 0, stride_frames=stride, batch_size=1000):
        with torch.no_grad():
            f = model.net.frame_features(batch["x"], batch["valid"]).numpy()
        seen = batch["valid"].any(-1).numpy()
        for w, start in enumerate(batch["model_start"].numpy()):
            total[start:start + T][seen[w]] += f[w][seen[w]]
            count[start:start + T][seen[w]] += 1
    k = 1000  # a frame in the middle, covered by T / stride windows
    assert count[k] == T // stride
    np.testing.assert_allclose(emb[k, 0], total[k] / count[k], rtol=1e-4, atol=1e-5)


def test_batches_do_not_change_the_result(mouse):
    model = _tiny(mouse)
    a = model.embed(mouse, batch_size=7)
    b = model.embed(mouse, batch_size=512)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)


def test_unordered_rows_get_their_own_embedding(mouse):
    model = _tiny(mouse)
    emb = model.embed(mouse)
    order = np.random.default_rng(0).permutation(mouse.n_frames)
    shuffled = mouse.sel(frames=order)
    np.testing.assert_allclose(model.embed(shuffled), emb[order], rtol=1e-4, atol=1e-5,
                               equal_nan=True)


def test_streaming_equals_the_whole_grid_average(flies):
    """Embeddings reach the rows batch by batch (RowStream); on a recording whose video rate
    is not the model's (rows between model frames: interpolated), with unordered rows, a
    stretch of missing rows and tiny batches, that equals averaging over the whole grid first and
    interpolating to the rows after (model.GridAverage + grid_to_rows)."""
    from napari_skelmae.model import GridAverage, grid_to_rows

    tracks = flies.replace(fps=25.0)
    model = _tiny(tracks, model_fps=30.0)
    kept = np.r_[0:1200, 1300:tracks.n_frames]
    rows = np.random.default_rng(1).permutation(kept)
    tracks = tracks.sel(frames=rows)
    stride = 3
    emb = model.embed(tracks, stride_frames=stride, batch_size=5)
    grid = TimeGrid.of(tracks, model.window)
    present = ~tracks.missing.all(axis=2)
    for individual in range(tracks.n_individuals):
        whole = GridAverage(grid.n_frames, (emb.shape[-1],))
        for batch in model.sliding_windows(tracks, individual, stride_frames=stride,
                                           batch_size=64):
            with torch.no_grad():
                f = model.net.frame_features(batch["x"], batch["valid"]).numpy()
            whole.add(batch["model_start"].numpy(), f, batch["valid"].any(-1).numpy())
        values, ok = grid_to_rows(*whole.mean(), grid, tracks.frame_index)
        expected = np.where((ok & present[:, individual])[:, None], values, np.nan)
        assert np.isfinite(expected).all(-1).mean() > 0.9
        np.testing.assert_allclose(emb[:, individual], expected, rtol=1e-4, atol=1e-5,
                                   equal_nan=True)


def test_bfloat16_embeddings_stay_close_to_float32(mouse):
    """precision="bfloat16" (what "auto" takes on a CUDA GPU with bf16) changes an embedding
    by a small fraction of its norm; "auto" on the CPU is float32, i.e. exact."""
    model = _tiny(mouse)
    exact = model.embed(mouse, precision="float32")
    np.testing.assert_array_equal(model.embed(mouse), exact)
    half = model.embed(mouse, precision="bfloat16")
    assert np.array_equal(np.isnan(half), np.isnan(exact))
    ok = np.isfinite(exact).all(-1)
    rel = np.linalg.norm(half[ok] - exact[ok], axis=-1) / np.linalg.norm(exact[ok], axis=-1)
    assert np.median(rel) < 0.05, np.median(rel)
    with pytest.raises(SkelmaeError, match="precision"):
        model.embed(mouse, precision="float16")


def test_incompatible_tracks_are_refused(mouse, flies):
    model = _tiny(mouse)
    with pytest.raises(SkelmaeError, match="missing"):
        model.embed(flies)
    with pytest.raises(SkelmaeError, match="batch_size"):
        model.embed(mouse, batch_size=0)


def test_default_stride_makes_embeddings_independent_of_window_placement(mouse):
    """Tokens carry their position in the window; with the default stride (one patch) every
    frame is seen at every position, so cutting the windows elsewhere (the recording started
    2 frames later) barely changes a frame's embedding, unlike half-window strides."""
    model = _tiny(mouse)
    later = mouse.sel(frames=slice(2, None))
    half = model.window.n_frames // 2

    def change(stride):
        a = model.embed(mouse, stride_frames=stride)[2 + 100:-100]
        b = model.embed(later, stride_frames=stride)[100:-100]
        return float(np.nanmean(np.linalg.norm(a - b, axis=-1))
                     / np.nanmean(np.linalg.norm(a - np.nanmean(a, axis=0), axis=-1)))

    default, coarse = change(None), change(half)
    assert default < 0.5 * coarse, (default, coarse)


def test_progress_and_cancel(mouse):
    model = _tiny(mouse)
    seen = []
    model.embed(mouse, batch_size=64, progress=lambda done, total: seen.append((done, total)))
    assert len(seen) > 1 and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(SkelmaeError, match="cancelled"):
        model.embed(mouse, batch_size=64, cancel=stop)


@pytest.mark.parametrize("method, tiny", [
    ("skeleton2vec", TINY_MAMP),
    ("skeletonmae", dict(dim=32, gin_layers=1)),
    ("msae", dict(embed_dim=16, encoder=((16, 16, 8),), decoder=((16, 16, 8),))),
])
def test_every_method_embeds(mouse, method, tiny):
    # SkeletonMAE and MSAE hold 0-d tensors (a GIN eps, BatchNorm counters): the fingerprint
    # must hash them too
    model = pretrain(mouse, method, max_steps=2, batch_size=8, precision="float32",
                     window=WINDOW, val_fraction=0.0, **tiny)
    emb = model.embed(mouse)
    assert emb.shape == (mouse.n_frames, 1, model.net.feature_dim)
    assert np.isfinite(emb).all(axis=-1).mean() > 0.99
    assert emb.model_id == model.model_id
