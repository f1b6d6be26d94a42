"""Windows and augmentation on real recordings: shapes, egocentric frame, resampling,
validity, memory, splits and the augmentations' invariants."""

from __future__ import annotations

import logging
import tracemalloc
import warnings

import numpy as np
import pytest
import torch

from napari_skelmae import SkelmaeError, load_tracks
from napari_skelmae.augment import (
    Augment,
    crop_resize,
    mirror,
    random_flip,
    random_rotation,
    symmetry_pairs,
)
from napari_skelmae.windows import (
    TimeGrid,
    WindowConfig,
    WindowDataset,
    denormalise_window,
    iter_windows,
    resolve_normalisation,
    split_train_val,
)

from .conftest import data_path

# model_fps equal to the fly video's 25 fps: model frame k is video frame k, so validity can be
# checked row by row against the source.
SAME_RATE = dict(model_fps=25.0, max_gap_s=0.0, scale="none")


def _load(*parts, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no video beside some files
        return load_tracks(data_path(*parts), **kw)


@pytest.fixture(scope="module")
def fly():
    return _load("sleap_analysis_example", "predictions.slp")


@pytest.fixture(scope="module")
def mouse():
    return _load("dlc_openfield", "predictions",
                 "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000.h5")


@pytest.fixture(scope="module")
def fish():
    return _load("zebrafish_headrestrained_dlc", "example_headrestrained_DLC_250fps.csv.gz",
                 fps=250)


def _all(ds):
    return ds.get_batch(np.arange(len(ds)))


def _source_rows(tracks, batch, b):
    """Source row of each frame of window b when model and video rates are equal."""
    frames = batch["start_frame"][b].item() + np.arange(batch["x"].shape[1])
    return np.searchsorted(tracks.frame_index, frames)


# ------------------------------------------------------------------------------ config
def test_window_length_is_a_whole_number_of_patches():
    assert WindowConfig().n_frames == 64
    assert WindowConfig(window_s=1.0, model_fps=30).n_frames == 32  # 30 -> next multiple of 4
    assert WindowConfig(window_s=1.0, model_fps=30, temporal_patch=6).n_frames == 30
    assert WindowConfig(window_s=0.01, model_fps=30).n_frames == 4
    fish_cfg = WindowConfig.for_fps(250)
    assert fish_cfg.model_fps == 125 and fish_cfg.n_frames == 64 and fish_cfg.max_gap_s < 0.05
    assert WindowConfig.for_fps(25) == WindowConfig()


def test_config_json_round_trip_and_unknown_keys():
    cfg = WindowConfig(center=["leftear", "rightear"], heading=("tailbase", "snout"),
                       confidence_threshold=0.6)
    assert WindowConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(SkelmaeError, match="window_sec"):
        WindowConfig.from_dict({"window_sec": 2.0})
    with pytest.raises(SkelmaeError, match="scale"):
        WindowConfig(scale="pixels")


# ----------------------------------------------------------------------- normalisation
def test_auto_normalisation_on_fly_mouse_and_fish(fly, mouse, fish):
    def named(norm):
        n = norm.keypoint_names
        centre = None if norm.center is None else [n[i] for i in norm.center]
        return centre, [n[i] for i in norm.heading]

    assert named(resolve_normalisation(fly)) == (["thorax"], ["abdomen", "head"])
    assert named(resolve_normalisation(mouse)) == (["tailbase", "snout"], ["tailbase", "snout"])
    assert named(resolve_normalisation(fish)) == (
        ["head_caudal", "head_rostral"], ["head_caudal", "head_rostral"])
    override = resolve_normalisation(mouse, WindowConfig(center=["leftear", "rightear"]))
    assert named(override)[0] == ["leftear", "rightear"]
    with pytest.raises(SkelmaeError, match="tail_tip"):
        resolve_normalisation(mouse, WindowConfig(heading=("tail_tip", "snout")))


def test_fly_windows_are_centred_on_thorax_with_head_along_plus_y(fly):
    batch = _all(WindowDataset(fly, WindowConfig(stride_s=1.0)))
    names = fly.keypoint_names
    thorax, head, abdomen = (names.index(k) for k in ("thorax", "head", "abdomen"))
    x, valid = batch["x"].numpy(), batch["valid"].numpy()
    assert x.shape[1:] == (64, 13, 2)
    # a valid point implies a reference: the centre keypoint is present in that frame
    assert np.all(valid[..., thorax] == valid.any(-1))
    assert np.abs(x[..., thorax, :][valid[..., thorax]]).max() < 1e-4
    both = valid[..., head] & valid[..., abdomen]
    h = (x[..., head, :] - x[..., abdomen, :])[both]
    assert len(h) > 10_000
    assert np.all(h[:, 1] > 0) and np.abs(h[:, 0]).max() < 1e-4 * np.abs(h[:, 1]).max()
    # body_length scale: the median head-abdomen distance becomes 1
    assert abs(np.median(h[:, 1]) - 1) < 0.05
    assert np.all(x[~valid] == 0)


def test_3d_windows_rotate_about_z_only():
    reach = _load("dlc_reaching_kinematics", "reachingDEMO_3D.h5", fps=100)
    cfg = WindowConfig(center="R_shoulder", heading=("Right_elbow", "Right_wrist"), scale="none",
                       model_fps=100, max_gap_s=0.0)
    batch = _all(WindowDataset(reach, cfg))
    names = reach.keypoint_names
    elbow, wrist = names.index("Right_elbow"), names.index("Right_wrist")
    x, valid = batch["x"].numpy(), batch["valid"].numpy()
    both = valid[..., elbow] & valid[..., wrist]
    h = (x[..., wrist, :] - x[..., elbow, :])[both]
    assert len(h) > 100 and np.all(h[:, 1] > 0) and np.abs(h[:, 0]).max() < 1e-3
    # z is only translated: window z = source z - shoulder z, frame by frame
    rows = _source_rows(reach, batch, 0)
    src = reach.positions[rows, 0]
    expect_z = src[:, :, 2] - src[:, names.index("R_shoulder"), None, 2]
    ok = valid[0]
    np.testing.assert_allclose(x[0, :, :, 2][ok], expect_z[ok], atol=1e-3)


# -------------------------------------------------------------------------- resampling
def _check_against_np_interp(tracks, batch, grid, keypoint, min_checked):
    """Denormalised window values vs np.interp of the source on the window's video times."""
    k = tracks.keypoint_names.index(keypoint)
    src = tracks.sorted_by_frame()
    back = denormalise_window(batch["x"], batch["center"], batch["angle"], batch["scale"]).numpy()
    T = back.shape[1]
    checked = 0
    for b in range(len(back)):
        ind = batch["individual"][b].item()
        present = ~np.isnan(src.positions[:, ind, k, 0])
        frames = grid.video_frame(batch["model_start"][b].item() + np.arange(T))
        ok = batch["valid"][b, :, k].numpy()
        for c in range(tracks.n_space):
            expect = np.interp(frames, src.frame_index[present], src.positions[present, ind, k, c])
            np.testing.assert_allclose(back[b, ok, k, c], expect[ok], atol=2e-2)
        checked += ok.sum()
    assert checked >= min_checked


def test_fly_25_fps_resampled_to_30_follows_the_source_trajectory(fly):
    ds = WindowDataset(fly, WindowConfig(scale="body_length"))
    # video frames 0..2999 at 25 fps end at 119.96 s: model frames 0..3598 at 30 Hz
    assert ds.grid(0).n_frames == 3599
    _check_against_np_interp(fly, _all(ds), ds.grid(0), "wingL", min_checked=10_000)


def test_zebrafish_250_fps_resampled_to_100_hz(fish):
    cfg = WindowConfig.for_fps(250, model_fps=100.0, window_s=0.64, stride_s=0.32)
    grid = TimeGrid.of(fish, cfg)
    assert grid.n_frames == 27999  # frames 0..69996 at 250 fps, every 2.5 frames
    batches = list(iter_windows(fish, cfg, batch_size=128))
    starts = np.concatenate([b["model_start"].numpy() for b in batches])
    covered = np.zeros(grid.n_frames, bool)
    for s in starts:
        covered[s: s + cfg.n_frames] = True
    assert covered.all() and starts[-1] == grid.n_frames - cfg.n_frames
    _check_against_np_interp(fish, batches[0], grid, "tail10", min_checked=128 * 60)


# ---------------------------------------------------------------------------- validity
def _expected_valid(tracks, batch, usable, norm):
    """Valid = usable point in a frame whose centre and heading keypoints are usable."""
    ref = list(norm.center) + list(norm.heading)
    expect = []
    for b in range(len(batch["x"])):
        u = usable[_source_rows(tracks, batch, b), batch["individual"][b].item()]
        expect.append(u & u[:, ref].all(-1, keepdims=True))
    return np.stack(expect)


def test_missing_source_points_are_invalid_and_zero(fly):
    ds = WindowDataset(fly, WindowConfig(**SAME_RATE, min_valid_fraction=0.0))
    batch = _all(ds)
    expect = _expected_valid(fly, batch, ~fly.missing, ds.normalisation)
    assert (~expect).sum() > 1000  # the recording has real gaps to check
    np.testing.assert_array_equal(batch["valid"].numpy(), expect)
    assert torch.all(batch["x"][~batch["valid"]] == 0)


def test_low_confidence_points_are_invalid_under_a_threshold(fly):
    threshold = float(np.nanquantile(fly.confidence, 0.1))
    ds = WindowDataset(fly, WindowConfig(**SAME_RATE, confidence_threshold=threshold))
    batch = _all(ds)
    usable = ~fly.missing & (fly.confidence >= threshold)
    np.testing.assert_array_equal(batch["valid"].numpy(),
                                  _expected_valid(fly, batch, usable, ds.normalisation))


def _gapped(fly, rows_nan, individual, keypoint):
    pos = fly.positions.copy()
    pos[rows_nan, individual, keypoint] = np.nan
    return fly.replace(positions=pos)


def _clean_stretch(fly, individual, length):
    ok = ~fly.missing[:, individual].any(-1)
    run = np.convolve(ok, np.ones(length, int), "valid") == length
    return int(np.flatnonzero(run)[0])


def test_short_gaps_are_bridged_long_gaps_stay_invalid(fly):
    wing = fly.keypoint_names.index("wingL")
    a = _clean_stretch(fly, 0, 80)
    short, long_ = [a + 10], list(range(a + 30, a + 40))  # 40 ms and 400 ms
    tracks = _gapped(fly, short + long_, 0, wing)
    cfg = WindowConfig(model_fps=25.0, max_gap_s=0.1, scale="none", window_s=80 / 25,
                       stride_s=1 / 25, min_valid_fraction=0.0)
    ds = WindowDataset(tracks, cfg)
    i = int(np.flatnonzero((ds.index[:, 1] == 0) & (ds.index[:, 2] == a))[0])
    batch = ds.get_batch([i])
    valid = batch["valid"][0, :, wing].numpy()
    assert valid[10] and not valid[30:40].any() and valid[40:].all() and valid[:30].all()
    back = denormalise_window(batch["x"], batch["center"], batch["angle"], batch["scale"])[0]
    midpoint = (fly.positions[a + 9, 0, wing] + fly.positions[a + 11, 0, wing]) / 2
    np.testing.assert_allclose(back[10, wing].numpy(), midpoint, atol=1e-2)


def test_sparse_and_unordered_frame_index(fly):
    keep = np.ones(fly.n_frames, bool)
    keep[1000:1020] = False  # 0.8 s without rows: longer than max_gap_s
    keep[1500] = False  # one missing row: bridged
    sparse = fly.sel(frames=keep)
    order = np.random.default_rng(0).permutation(sparse.n_frames)
    shuffled = sparse.replace(positions=sparse.positions[order],
                              confidence=sparse.confidence[order],
                              frame_index=sparse.frame_index[order])
    cfg = WindowConfig(model_fps=25.0, scale="none", min_valid_fraction=0.0)
    a, b = _all(WindowDataset(sparse, cfg)), _all(WindowDataset(shuffled, cfg))
    for key in ("x", "valid", "start_frame"):
        assert torch.equal(a[key], b[key])
    video = a["start_frame"][:, None] + torch.arange(cfg.n_frames)
    assert not a["valid"][(video >= 1000) & (video < 1020)].any()
    at_1500 = a["valid"][video == 1500]
    assert at_1500.float().mean() > 0.9  # bridged like the rows around it
    # rows that exist come through unchanged (model frame = video frame)
    back = denormalise_window(a["x"], a["center"], a["angle"], a["scale"]).numpy()
    w, t = 0, 7
    row = np.searchsorted(sparse.frame_index, a["start_frame"][w].item() + t)
    ind = a["individual"][w].item()
    ok = a["valid"][w, t].numpy()
    np.testing.assert_allclose(back[w, t][ok], sparse.positions[row, ind][ok], atol=1e-2)


def test_tracks_without_fps_are_refused(fly):
    with pytest.raises(SkelmaeError, match="fps"):
        WindowDataset(fly.replace(fps=None))


# ----------------------------------------------------------------- dataset and memory
def test_length_scales_with_recording_but_memory_does_not_hold_windows(fly):
    cfg = WindowConfig(stride_s=1 / 30)  # one window per model frame: windows >> source
    short = WindowDataset(fly.sel(frames=slice(0, 1000)), cfg)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    full = WindowDataset(fly, cfg)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    T, V, C = cfg.n_frames, fly.n_keypoints, fly.n_space
    # 3000 vs 1000 rows: (3599 - 63) vs (1199 - 63) start positions per individual
    assert abs(len(full) / len(short) - 3536 / 1136) < 0.1
    windows_bytes = len(full) * T * V * C * 4
    assert held < 3 * fly.positions.nbytes + full.index.nbytes + 200_000
    assert windows_bytes > 20 * held


def test_too_short_recordings(fly, caplog):
    short = fly.sel(frames=slice(0, 40))  # 1.6 s, the window is 2.13 s
    with pytest.raises(SkelmaeError) as err:
        WindowDataset(short)
    for part in ("predictions.slp", "1.6 s", "2.13 s", "64 model frames"):
        assert part in str(err.value)
    with caplog.at_level(logging.WARNING, logger="napari_skelmae.windows"):
        mixed = WindowDataset([short, fly])
    assert "shorter than one window" in caplog.text
    assert set(mixed.index[:, 0]) == {1}
    assert len(mixed) == len(WindowDataset(fly))


def test_mismatched_keypoints_are_named_and_reordered_ones_accepted(fly, mouse):
    with pytest.raises(SkelmaeError, match=r"thorax.*snout"):
        WindowDataset([fly, mouse])
    reordered = fly.sel(keypoints=list(reversed(fly.keypoint_names)))
    both = WindowDataset([fly, reordered])
    batch = both.get_batch(np.arange(len(both)))
    first = batch["recording"] == 0
    assert torch.allclose(batch["x"][first], batch["x"][~first])


def test_absent_individual_is_skipped_with_a_reason(fly, caplog):
    pos = np.concatenate([fly.positions, np.full_like(fly.positions[:, :1], np.nan)], 1)
    conf = np.concatenate([fly.confidence, np.full_like(fly.confidence[:, :1], np.nan)], 1)
    three = fly.replace(positions=pos, confidence=conf,
                        individual_names=[*fly.individual_names, "ghost"])
    with caplog.at_level(logging.WARNING, logger="napari_skelmae.windows"):
        ds = WindowDataset(three)
    assert "ghost" in caplog.text
    assert set(ds.index[:, 1]) == {0, 1}


def test_split_by_time_blocks_shares_no_frame(fly, mouse):
    ds = WindowDataset([fly, fly.sel(frames=slice(0, 2000))])
    train, val = split_train_val(ds, val_fraction=0.2, seed=3)
    assert len(train) and len(val)
    assert 0.1 < len(val) / (len(train) + len(val)) < 0.35
    T = ds.n_frames
    for r in (0, 1):
        used = {}
        for name, part in (("train", train), ("val", val)):
            rows = part.index[part.index[:, 0] == r]
            frames = np.zeros(ds.grid(r).n_frames, bool)
            for s in rows[:, 2]:
                frames[s: s + T] = True
            used[name] = frames
        assert not (used["train"] & used["val"]).any()
    again = split_train_val(ds, val_fraction=0.2, seed=3)[1]
    np.testing.assert_array_equal(again.index, val.index)
    with pytest.raises(SkelmaeError, match="validation"):
        split_train_val(WindowDataset(mouse.sel(frames=slice(0, 300))), 0.2)


def test_getitem_collate_equals_get_batch(fly):
    ds = WindowDataset(fly)
    idx = [5, 150, 3, 77]
    a, b = ds.collate([ds[i] for i in idx]), ds.get_batch(idx)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k].nan_to_num(), b[k].nan_to_num()), k
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=ds.collate)
    assert next(iter(loader))["x"].shape == (8, 64, 13, 2)


# ------------------------------------------------------------------------ augmentation
@pytest.fixture(scope="module")
def fly_batch(fly):
    ds = WindowDataset(fly)
    return ds.get_batch(np.arange(0, len(ds), 7))


def _pairwise(x):
    return torch.cdist(x.reshape(-1, *x.shape[2:]), x.reshape(-1, *x.shape[2:]))


def test_rotation_preserves_distances_2d_and_3d(fly_batch):
    x, valid = fly_batch["x"], fly_batch["valid"]
    g = torch.Generator().manual_seed(0)
    rx, rv = random_rotation(x, valid, max_angle=np.pi, generator=g)
    both = (valid[..., :, None] & valid[..., None, :]).reshape(-1, x.shape[2], x.shape[2])
    assert torch.equal(rv, valid) and torch.all(rx[~valid] == 0)
    assert torch.allclose(_pairwise(rx)[both], _pairwise(x)[both], atol=1e-5)
    assert not torch.allclose(rx, x, atol=1e-2)
    x3 = torch.cat([x, x[..., :1] * 0.5], -1)  # a 3D body from real coordinates
    r3, _ = random_rotation(x3, valid, max_angle=0.3, generator=g)
    assert torch.allclose(_pairwise(r3)[both], _pairwise(x3)[both], atol=1e-5)
    assert not torch.allclose(r3[..., 2], x3[..., 2], atol=1e-3)  # not only about z


def test_flip_swaps_wings_and_twice_is_identity(fly, fly_batch):
    x, valid = fly_batch["x"], fly_batch["valid"]
    pairs = symmetry_pairs(fly.keypoint_names, fly.metadata)
    names = fly.keypoint_names
    wl, wr = names.index("wingL"), names.index("wingR")
    assert (wl, wr) in pairs and len(pairs) == 5  # wings, three legs, eyes
    fx, fv = mirror(x, valid, pairs)
    assert torch.equal(fx[..., wl, 0], -x[..., wr, 0]) and torch.equal(fx[..., wl, 1],
                                                                       x[..., wr, 1])
    assert torch.equal(fv[..., wl], valid[..., wr])
    head = names.index("head")
    assert torch.equal(fx[..., head, 0], -x[..., head, 0])
    xx, vv = mirror(fx, fv, pairs)
    assert torch.equal(xx, x) and torch.equal(vv, valid)
    g = torch.Generator().manual_seed(1)
    px, _ = random_flip(x, valid, pairs, 0.5, g)
    flipped = (px[:, :, head, 0] != x[:, :, head, 0]).any(1)
    assert 0 < flipped.float().mean() < 1


def test_symmetry_pairs_from_names_and_metadata():
    names = ["snout", "leftear", "rightear", "tailbase"]
    assert symmetry_pairs(names) == [(1, 2)]
    assert symmetry_pairs(["head_rostral", "tail0", "tail1"]) == []
    assert symmetry_pairs(["ear_l", "ear_r", "L_paw", "R_paw", "tail"]) == [(0, 1), (2, 3)]
    assert symmetry_pairs(["a", "b", "c"], {"symmetries": [["c", "a"]]}) == [(0, 2)]


def test_crop_resize_keeps_shape_and_interpolates_validity(fly_batch):
    valid = fly_batch["valid"].clone()
    valid[:, 20] = False  # one missing frame in every window, on top of the real gaps
    B, T, V, _ = fly_batch["x"].shape
    t = torch.arange(T, dtype=torch.float32)[None, :, None].expand(B, T, V)
    coded = torch.stack([t, -t], -1) * valid[..., None]  # each value says which frame it is
    out, out_valid = crop_resize(coded, valid, 0.5, torch.Generator().manual_seed(2))
    assert out.shape == coded.shape and out_valid.shape == valid.shape
    assert torch.all(out[~out_valid] == 0)
    for b in range(B):
        # the source frame of each output frame, from a line through the valid ones
        frames = out[b, :, :, 0][out_valid[b]].numpy()
        times = np.nonzero(out_valid[b].numpy())[0]
        step, start = np.polyfit(times, frames, 1)
        assert 31 / 63 - 1e-4 <= step <= 1 + 1e-4  # stretched by a p in [0.5, 1], in order
        np.testing.assert_allclose(frames, start + step * times, atol=1e-3)
        src = start + step * np.arange(T)
        lo, hi = np.floor(src + 1e-3).astype(int), np.ceil(src - 1e-3).astype(int)
        expect = valid[b].numpy()[lo] & valid[b].numpy()[hi]  # the AND rule
        np.testing.assert_array_equal(out_valid[b].numpy(), expect)


def test_augment_is_deterministic_per_seed(fly, fly_batch):
    pairs = symmetry_pairs(fly.keypoint_names)
    aug = Augment(min_crop=0.5)
    run = [aug(fly_batch["x"], fly_batch["valid"], pairs, torch.Generator().manual_seed(s))
           for s in (7, 7, 8)]
    assert torch.equal(run[0][0], run[1][0]) and torch.equal(run[0][1], run[1][1])
    assert not torch.equal(run[0][0], run[2][0])
    assert torch.all(run[0][0][~run[0][1]] == 0)
    assert Augment.from_dict(aug.to_dict()) == aug
    with pytest.raises(SkelmaeError, match="strength"):
        Augment.from_dict({"strength": 1})
