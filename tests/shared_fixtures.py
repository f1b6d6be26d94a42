"""Fixtures several test modules share; a module takes them with
``from .shared_fixtures import one_thread  # noqa: F401`` (an autouse fixture imported into a
module is active for that module only, so no test elsewhere changes its thread count)."""

from __future__ import annotations

import warnings

import pytest
import torch
from threadpoolctl import threadpool_limits

from napari_skelmae.sample_data import sample_path

PLUGIN = "napari-skelmae"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors on two busy cores: one torch / BLAS thread is faster than several
    fighting for them (10x here); the settings are restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def discover_plugins():
    """napari finds this plugin's manifest (as after an install) in every test."""
    import npe2

    npe2.PluginManager.instance().discover()


def open_sample(viewer):
    """Open the bundled flies through the plugin; returns the points layer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        viewer.open(sample_path(), plugin=PLUGIN)
    return next(layer for layer in viewer.layers if layer._type_string == "points")
