"""mammo_helpers._lazy: subpackages load their modules on first access, importing the
package imports no heavy library, and unknown names are named."""

import subprocess
import sys

import pytest

import mammo_helpers as mh


def test_importing_the_packages_loads_no_heavy_library():
    code = (
        "import sys, mammo_helpers, mammo_helpers.data, mammo_helpers.models, mammo_helpers.xai\n"
        "heavy = [m for m in ('torch', 'open_clip', 'pandas', 'cv2') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_names_resolve_to_modules_and_exported_functions():
    assert mh.models.losses.__name__ == "mammo_helpers.models.losses"
    assert mh.data.load_source is mh.data.sources.load_source
    assert {
        "classifiers",
        "clip",
        "clip_training",
        "crop_training",
        "detection",
        "end2end",
        "fusion",
        "image_training",
        "losses",
        "multiview",
        "task_training",
    } == set(dir(mh.models)) and "xai" in dir(mh)
    for package in (mh, mh.data, mh.models, mh.xai):
        with pytest.raises(
            AttributeError, match=rf"module '{package.__name__}' has no attribute 'nope'"
        ):
            package.nope  # noqa: B018
