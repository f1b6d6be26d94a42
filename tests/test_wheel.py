"""A wheel built from the repository installs into a fresh venv, and napari (npe2) discovers
the plugin's manifest, reader and sample data from it — what installing from the hub does."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

CHECK = r"""
import json, sys
from pathlib import Path
import npe2
import napari_skelmae
pm = npe2.PluginManager.instance()
pm.discover()
mf = pm.get_manifest("napari-skelmae")
from napari_skelmae.sample_data import sample_path
readers = [r.plugin_name for r in pm.iter_compatible_readers([str(sample_path())])]
samples = [s.key for s in mf.contributions.sample_data]
layers = npe2.read([str(sample_path())], plugin_name="napari-skelmae", stack=False)
print(json.dumps({
    "module": napari_skelmae.__file__,
    "manifest": mf.name,
    "readers": readers,
    "samples": samples,
    "layer_types": [t[2] if len(t) > 2 else None for t in layers],
    "sample_exists": sample_path().is_file(),
}))
"""


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.fail("uv is not installed in the test venv (scripts/setup-env.sh installs it)")
    return str(uv)


def test_wheel_installs_in_fresh_venv_and_napari_discovers_it(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
         str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = dist.glob("napari_skelmae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("napari_skelmae/napari.yaml", "napari_skelmae/data/demo-flies13-preds.slp",
                   "napari_skelmae/data/demo-flies13-preds.mp4",
                   "napari_skelmae/data/ATTRIBUTION.md"):
        assert needed in names, f"{needed} missing from the wheel"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "napari.manifest" in zipfile.ZipFile(wheel).read(entry).decode()

    # Pin every dependency to what the test venv has, so the fresh install resolves from the
    # local cache (torch CPU wheel included) instead of downloading a CUDA build.
    freeze = subprocess.run([_uv(), "pip", "freeze", "--python", sys.executable],
                            check=True, capture_output=True, text=True).stdout
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(
        ln for ln in freeze.splitlines() if ln and not ln.startswith(("-e", "napari-skelmae"))
        and " @ " not in ln
    ))
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([_uv(), "venv", "-q", "--python", sys.executable, str(venv)],
                   check=True, env=env, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--python", str(py), "--constraint", str(constraints),
         "--find-links", str(REPO / ".cache" / "wheels"), f"{wheel}[qt]"],
        check=True, env=env, timeout=600,
    )
    res = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    import json

    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert str(venv) in out["module"], "imported the repository, not the installed wheel"
    assert out["manifest"] == "napari-skelmae"
    assert "napari-skelmae" in out["readers"]
    assert out["samples"] == ["flies"]
    assert out["sample_exists"]
    assert "points" in out["layer_types"] and "image" in out["layer_types"]
