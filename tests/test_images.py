"""mammo_helpers.data.images: a manifest's images through a pipeline, and class labels with
unlabelled images dropped and counted."""

import numpy as np
import pandas as pd
import pytest

import mammo_helpers as mh
from mammo_helpers.data.images import MissingLabelWarning, class_labels, load_images
from mammo_helpers.io import read_dicom, write_dicom


def _manifest(tmp_path, n=3):
    rows = []
    for i in range(n):
        path = tmp_path / f"im{i}.dcm"
        pixels = (np.arange(40 * 30).reshape(40, 30) * (i + 1)) % 4096
        write_dicom(path, pixels.astype(np.uint16), pixel_spacing_mm=0.1, laterality="L",
                    view="CC", patient_id=f"P{i}", study_id=f"S{i}", image_id=f"I{i}",
                    photometric="MONOCHROME2", bits_stored=12, window_center=2048,
                    window_width=4096, voi_lut_function="LINEAR")  # fmt: skip
        rows.append({"image_id": f"I{i}", "path": str(path), "density": "ABC"[i]})
    return pd.DataFrame(rows)


def test_load_images_keeps_the_pipeline_output_in_row_order(tmp_path):
    df = _manifest(tmp_path)
    seen = []

    def pipeline(pixels):
        seen.append(pixels)
        return mh.preprocess.pipelines.PipelineResult(pixels[:2, :3] * 0 + len(seen), {}, None)

    x = load_images(df, pipeline, progress=False)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    assert x[:, 0, 0].tolist() == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(seen[1], read_dicom(df.path[1]).pixels)


def test_a_missing_file_is_named_with_its_image_id(tmp_path):
    df = _manifest(tmp_path)
    df.loc[1, "path"] = str(tmp_path / "gone.dcm")
    with pytest.raises(FileNotFoundError, match="image 'I1'.*gone.dcm"):
        load_images(df, mh.preprocess.pipeline_density_clip, progress=False)
    with pytest.raises(ValueError, match="no row"):
        load_images(df.iloc[:0], mh.preprocess.pipeline_density_clip, progress=False)


def test_class_labels_drop_unlabelled_images_with_a_count():
    df = pd.DataFrame({"image_id": list("abcde"), "density": ["B", None, "D", " ", "A"]})
    df.attrs["source"] = "x"
    with pytest.warns(MissingLabelWarning, match="2 of 5 images have no density label"):
        kept, y = class_labels(df, "density", ("A", "B", "C", "D"))
    assert kept.image_id.tolist() == ["a", "c", "e"] and y.tolist() == [1, 3, 0]
    assert kept.attrs == {"source": "x", "dropped_unlabelled": 2}


def test_class_labels_name_an_unknown_value_and_a_missing_column():
    df = pd.DataFrame({"image_id": ["a", "b"], "density": ["B", "E"]})
    with pytest.raises(ValueError, match=r"image 'b': density 'E' is not one of \['A', 'B'"):
        class_labels(df, "density", ("A", "B", "C", "D"))
    with pytest.raises(KeyError, match="no 'birads' column"):
        class_labels(df, "birads", ("A",))
