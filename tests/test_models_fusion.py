"""mammo_helpers.models.fusion: paper 04's patient meta-models. Eq. 1's score vector on hand
inputs, the P_score grid search checked against scikit-learn's own AUC, the feature scaler,
the shapes of P_feat, its training recipe on a toy task, balanced batches and the padding
of detection features."""

import re

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import mammo_helpers as mh
from mammo_helpers.models import fusion as fu

VIEWS = ["L-CC", "L-MLO", "R-CC", "R-MLO"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for these tiny models (restored after): on a loaded 2-core machine
    two threads made P_feat's toy training six times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hand_detections():
    """Per view (FOUR_VIEWS order): none, two, one, four mixed detections."""
    return [
        [],
        [(0.4, "benign_mass"), (0.8, "malignant_calcification")],
        {"scores": np.array([0.3]), "labels": np.array(["malignant_mass"])},
        [
            (0.9, "benign_calcification"),
            (0.2, "malignant_mass"),
            (0.6, "malignant_calcification"),
            (0.7, "benign_mass"),
        ],
    ]


# ----------------------------------------------------------------------------- eq. 1


def test_module_is_exposed_and_constants_are_the_papers():
    assert mh.models.fusion is fu
    assert fu.SVM_C == (1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 500, 1000)
    assert fu.RF_TREES == (3, 5, 7, 10, 15, 20)
    assert fu.N_DETECTIONS == (1, 2, 3, 4, 5)
    assert fu.TARGETS == ("lesion", "malignancy")
    assert fu.mlp_layouts(17) == [(17,), (17, 17), (17, 8)]
    assert fu.mlp_layouts(1) == [(1,), (1, 1), (1, 1)]
    assert set(fu.MALIGNANT_CLASSES) == {"malignant_calcification", "malignant_mass"}
    assert fu.VIEW_NAMES == tuple(VIEWS)


def test_score_vector_order_padding_and_size_for_the_lesion_target():
    v = fu.score_vector(0.25, [0.1, 0.2, 0.3, 0.4], hand_detections(), n=3, target="lesion")
    expected = [0.25, 0.1, 0.2, 0.3, 0.4]
    expected += [0, 0, 0]  # L-CC: no detection
    expected += [0.8, 0.4, 0]  # L-MLO: two detections at n = 3, descending, zero-padded
    expected += [0.3, 0, 0]  # R-CC
    expected += [0.9, 0.7, 0.6]  # R-MLO: the top 3 of 4
    np.testing.assert_array_equal(v, expected)
    assert v.dtype == float and v.shape == (5 + 4 * 3,)


def test_score_vector_malignancy_target_drops_benign_detections():
    v = fu.score_vector(0.25, [0.1, 0.2, 0.3, 0.4], hand_detections(), n=2, target="malignancy")
    np.testing.assert_array_equal(v, [0.25, 0.1, 0.2, 0.3, 0.4, 0, 0, 0.8, 0, 0.3, 0, 0.6, 0.2])


@pytest.mark.parametrize("n", fu.N_DETECTIONS)
@pytest.mark.parametrize("target", fu.TARGETS)
def test_score_vector_sizes_and_names_agree(n, target):
    dets = hand_detections()
    with_d = fu.score_vector(0.5, [0.1] * 4, dets, n=n, target=target)
    without = fu.score_vector(None, [0.1] * 4, dets, n=n, target=target)
    assert len(with_d) == 5 + 4 * n == len(fu.score_names(n, target))
    assert len(without) == 4 + 4 * n == len(fu.score_names(n, target, density=False))
    np.testing.assert_array_equal(with_d[1:], without)  # P*: the same vector without p_D
    for view in range(4):  # each view's detection scores descend
        block = with_d[5 + view * n : 5 + (view + 1) * n]
        assert list(block) == sorted(block, reverse=True)


def test_score_names_spell_out_the_entries():
    names = fu.score_names(2, "lesion")
    assert names[:5] == ["p_D", "p_F[L-CC]", "p_F[L-MLO]", "p_F[R-CC]", "p_F[R-MLO]"]
    assert names[5:9] == ["p_L[L-CC]#1", "p_L[L-CC]#2", "p_L[L-MLO]#1", "p_L[L-MLO]#2"]
    assert fu.score_names(1, "malignancy", density=False)[4] == "p_Lmal[L-CC]#1"
    assert len(set(fu.score_names(5, "lesion"))) == 25


def test_score_vector_accepts_numpy_inputs():
    v = fu.score_vector(
        np.float32(0.5),
        np.array([0.1, 0.2, 0.3, 0.4]),
        [np.array([(0.5, "benign_mass")], dtype=object), [], [], []],
        n=1,
        target="lesion",
    )
    np.testing.assert_array_equal(v, [0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0, 0, 0])


def test_score_vector_reads_detector_output_with_integer_labels():
    """models.detection.detect's dicts: float32 scores, int64 labels 1..4 in LESION_CLASSES
    order (0 is the background), boxes ignored."""

    def det(scores, labels):
        k = len(scores)
        return {
            "boxes": np.zeros((k, 4), np.float32),
            "scores": np.array(scores, np.float32),
            "labels": np.array(labels, np.int64),
        }

    dets = [det([0.875, 0.5], [3, 4]), det([], []), det([0.75], [2]), det([0.25, 0.125], [1, 2])]
    lesion = fu.score_vector(0.5, [0.1] * 4, dets, n=2, target="lesion")
    np.testing.assert_array_equal(lesion[5:], [0.875, 0.5, 0, 0, 0.75, 0, 0.25, 0.125])
    malignant = fu.score_vector(0.5, [0.1] * 4, dets, n=2, target="malignancy")
    np.testing.assert_array_equal(malignant[5:], [0.5, 0, 0, 0, 0.75, 0, 0.125, 0])
    assert [mh.vocab.LESION_CLASSES[i - 1] for i in (2, 4)] == list(fu.MALIGNANT_CLASSES)


def _call(**changes):
    kw = {
        "p_dense": 0.5,
        "p_findings": [0.1, 0.2, 0.3, 0.4],
        "detections": hand_detections(),
        "n": 2,
        "target": "lesion",
        "patient": "P-0042",
    }
    kw |= changes
    p_dense, p_findings, dets = kw.pop("p_dense"), kw.pop("p_findings"), kw.pop("detections")
    return fu.score_vector(p_dense, p_findings, dets, **kw)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"n": 0}, "n must be 1..5 (paper §II-C)"),
        ({"n": 6}, "n must be 1..5 (paper §II-C)"),
        ({"n": 2.0}, "n must be 1..5"),
        ({"p_dense": float("nan")}, "p_dense"),
        ({"p_dense": 1.5}, "p_dense"),
        ({"p_findings": [0.1, float("nan"), 0.3, 0.4]}, "p_findings[L-MLO]"),
        ({"p_findings": [0.1, 0.2, -0.1, 0.4]}, "p_findings[R-CC]"),
        ({"p_findings": [0.1, 0.2, 0.3]}, "p_findings must have 4 views"),
        ({"detections": hand_detections()[:3]}, "detections must have 4 views"),
        ({"detections": [[], [], [(float("nan"), "benign_mass")], []]}, "detections[R-CC][0]"),
        ({"detections": [[], [], [], [(1.2, "benign_mass")]]}, "detections[R-MLO][0]"),
        ({"detections": [[(0.5, "cyst")], [], [], []]}, "unknown lesion class 'cyst'"),
        ({"detections": [[(0.5, 0)], [], [], []]}, "detections[L-CC][0] has the unknown"),
        ({"detections": [[], [(0.5, 5)], [], []]}, "detections[L-MLO][0] has the unknown"),
        ({"detections": [[], [(0.5, True)], [], []]}, "detections[L-MLO][0] has the unknown"),
        ({"detections": [{"scores": [0.5], "labels": []}, [], [], []]}, "detections[L-CC]"),
        ({"target": "density"}, "target must be one of lesion, malignancy"),
    ],
)
def test_score_vector_errors_name_the_patient_and_the_parameter(changes, words):
    with pytest.raises(ValueError, match=re.escape(words)) as err:
        _call(**changes)
    assert "P-0042" in str(err.value)


def test_score_names_refuse_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("n must be 1..5 (paper §II-C)")):
        fu.score_names(0, "lesion")
    with pytest.raises(ValueError, match="target"):
        fu.score_names(1, "benign")


# ----------------------------------------------------------------------------- P_score


def score_data(n_train=120, n_val=80, n_features=9, seed=0):
    rng = np.random.default_rng(seed)

    def draw(n):
        y = np.arange(n) % 2
        X = np.clip(
            rng.random((n, n_features)) * 0.6 + 0.35 * y[:, None] * (rng.random((n, 1))), 0, 1
        )
        return X, y

    return (*draw(n_train), *draw(n_val))


@pytest.fixture(scope="module")
def fitted():
    data = score_data()
    return data, fu.fit_score_models(*data, seed=0)


def test_fit_score_models_table_holds_every_grid_point(fitted):
    (X, *_), result = fitted
    table = result.table
    assert len(table) == 9 + 6 + 3
    assert table["family"].value_counts().to_dict() == {"svm": 9, "random_forest": 6, "mlp": 3}
    assert [p["C"] for p in table[table.family == "svm"]["params"]] == list(fu.SVM_C)
    trees = [p["n_estimators"] for p in table[table.family == "random_forest"]["params"]]
    assert trees == list(fu.RF_TREES)
    layouts = [p["hidden_layer_sizes"] for p in table[table.family == "mlp"]["params"]]
    assert layouts == fu.mlp_layouts(X.shape[1]) == [(9,), (9, 9), (9, 4)]
    assert {"family", "params", "val_auc", "val_recall"} <= set(table.columns)
    assert table["selected"].sum() == 1
    assert set(result.best_per_family) == set(fu.FAMILIES)


def test_fit_score_models_selects_the_highest_validation_auc(fitted):
    (_, _, X_val, y_val), result = fitted
    aucs, recalls = [], []
    for cand in result.candidates:  # every candidate's AUC from scikit-learn itself
        p = cand.estimator.predict_proba(X_val)[:, 1]
        aucs.append(roc_auc_score(y_val, p))
        recalls.append(np.mean(p[y_val == 1] >= 0.5))
    np.testing.assert_allclose(result.table["val_auc"], aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.table["val_recall"], recalls, rtol=0, atol=1e-12)
    top = max(aucs)
    best_recall = max(r for a, r in zip(aucs, recalls, strict=True) if a == top)
    assert result.best.val_auc == pytest.approx(top)
    assert result.best.val_recall == pytest.approx(best_recall)
    assert result.table.loc[result.table["selected"], "name"].item() == result.best.name
    np.testing.assert_array_equal(
        result.predict(X_val), result.best.estimator.predict_proba(X_val)[:, 1]
    )
    for family, cand in result.best_per_family.items():
        rows = result.table[result.table.family == family]
        assert cand.family == family
        assert cand.val_auc == rows["val_auc"].max()


def test_fit_score_models_is_deterministic_for_a_seed(fitted):
    data, result = fitted
    again = fu.fit_score_models(*data, seed=0)
    cols = ["name", "val_auc", "val_recall"]
    assert again.table[cols].equals(result.table[cols])
    np.testing.assert_array_equal(again.predict(data[2]), result.predict(data[2]))


class Shifted:
    """A stand-in estimator: p = sigmoid(x[column] + shift) (the AUC does not depend on the
    shift, the recall at 0.5 does)."""

    def __init__(self, column, shift):
        self.column, self.shift = column, shift

    def fit(self, X, y):
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-(X[:, self.column] + self.shift)))
        return np.stack([1 - p, p], axis=1)


def test_fit_score_models_breaks_auc_ties_by_recall(monkeypatch):
    rng = np.random.default_rng(1)
    y = np.arange(60) % 2
    X = np.stack([rng.normal(y * 1.5 - 0.75, 1.0), rng.normal(0, 1, 60)], axis=1)

    def fake(n_features, seed, folds):
        return [
            ("svm", "low recall", {}, Shifted(0, -2.0)),
            ("svm", "noise", {}, Shifted(1, 10.0)),  # recall 1 but a lower AUC
            ("mlp", "high recall", {}, Shifted(0, 1.0)),
            ("mlp", "mid recall", {}, Shifted(0, 0.0)),
        ]

    monkeypatch.setattr(fu, "_candidates", fake)
    result = fu.fit_score_models(X, y, X, y)
    t = result.table.set_index("name")
    assert t.loc["low recall", "val_auc"] == t.loc["high recall", "val_auc"]
    assert t.loc["noise", "val_recall"] == 1.0 > t.loc["high recall", "val_recall"]
    assert result.best.name == "high recall"
    assert result.best_per_family["svm"].name == "low recall"
    assert result.best_per_family["mlp"].name == "high recall"


def test_fit_score_models_breaks_full_ties_by_grid_order(monkeypatch):
    y = np.arange(20) % 2
    X = np.stack([y + 0.1 * np.arange(20), np.zeros(20)], axis=1)
    monkeypatch.setattr(
        fu,
        "_candidates",
        lambda n, s, folds: [("svm", f"copy{i}", {}, Shifted(0, 0.0)) for i in range(3)],
    )
    assert fu.fit_score_models(X, y, X, y).best.name == "copy0"


@pytest.mark.parametrize(
    "which, words",
    [
        ("X_train_nan", "X_train holds 1 NaN"),
        ("X_val_nan", "X_val holds 1 NaN"),
        ("X_val_cols", "X_val has 8 columns"),
        ("y_train_len", "y_train must be 1-D with one label per row of X_train"),
        ("y_val_len", "y_val must be 1-D with one label per row of X_val"),
        ("y_val_one_class", "y_val has one class only"),
        ("y_train_labels", "y_train must hold only 0 and 1"),
    ],
)
def test_fit_score_models_names_the_bad_input(which, words):
    X, y, Xv, yv = score_data(20, 10)
    if which == "X_train_nan":
        X[3, 2] = np.nan
    elif which == "X_val_nan":
        Xv[1, 0] = np.nan
    elif which == "X_val_cols":
        Xv = Xv[:, :8]
    elif which == "y_train_len":
        y = y[:-1]
    elif which == "y_val_len":
        yv = np.append(yv, 1)
    elif which == "y_val_one_class":
        yv = np.zeros_like(yv)
    else:
        y = y * 2
    with pytest.raises(ValueError, match=re.escape(words)):
        fu.fit_score_models(X, y, Xv, yv)


# ----------------------------------------------------------------------------- P_feat


def test_feature_scaler_maps_training_range_to_minus_one_one_linearly():
    rng = np.random.default_rng(0)
    train = [rng.normal(3, 2, (30, 4, 5)), rng.normal(-1, 5, (30, 4, 7))]
    scaler = fu.FeatureScaler().fit(train)
    out = scaler.transform(train)
    for a, o in zip(train, out, strict=True):
        assert o.shape == a.shape and o.dtype == np.float32
        flat_a, flat_o = a.reshape(30, -1), o.reshape(30, -1)
        cols = np.arange(flat_a.shape[1])
        assert (flat_o[flat_a.argmin(0), cols] == -1).all()
        assert (flat_o[flat_a.argmax(0), cols] == 1).all()
        lo, hi = flat_a.min(0), flat_a.max(0)
        np.testing.assert_allclose(flat_o, -1 + 2 * (flat_a - lo) / (hi - lo), atol=1e-6)
    # the training map, not clipped, on data outside the training range
    test = [a[:2] * 3 + 10 for a in train]
    lo, hi = train[0].min(0), train[0].max(0)
    np.testing.assert_allclose(
        scaler.transform(test)[0], -1 + 2 * (test[0] - lo) / (hi - lo), rtol=1e-5
    )
    assert scaler.transform(test)[0].max() > 1
    with pytest.raises(ValueError, match="fitted on"):
        scaler.transform([train[0], train[1][:, :, :3]])
    with pytest.raises(ValueError, match="expected 2 branch arrays"):
        scaler.transform(train[:1])
    with pytest.raises(ValueError, match="NaN"):
        fu.FeatureScaler().fit([np.full((3, 4, 2), np.nan)])
    with pytest.raises(ValueError, match="call fit"):
        fu.FeatureScaler().transform(train)


@pytest.mark.parametrize("d", [16, 64, 1024])
@pytest.mark.parametrize("n", [1, 5])
def test_pfeat_gives_two_logits_per_patient(d, n):
    model = fu.PFeat(d, d, d, n)
    x = [torch.randn(3, 4, d), torch.randn(3, 4, d), torch.randn(3, 4, n * d)]
    assert model(*x).shape == (3, 2)
    star = fu.PFeat(None, d, d, n, density=False)
    assert star(*x[1:]).shape == (3, 2)


def test_pfeat_layout_and_the_variant_without_density():
    model = fu.PFeat(32, 48, 16, 3)
    convs = lambda branch: sum(isinstance(m, torch.nn.Conv1d) for m in branch)  # noqa: E731
    pools = lambda branch: sum(isinstance(m, torch.nn.MaxPool1d) for m in branch)  # noqa: E731
    assert [convs(b) for b in model.branches()] == [2, 2, 3]
    assert [pools(b) for b in model.branches()] == [2, 2, 3]
    assert all(b[0].in_channels == 4 for b in model.branches())
    head = list(model.head)
    assert isinstance(head[1], torch.nn.Dropout) and head[1].p == 0.1
    assert head[-1].out_features == 2
    star = fu.PFeat(None, 48, 16, 3, density=False)
    assert not any("density" in name for name, _ in star.named_parameters())
    assert any("density" in name for name, _ in model.named_parameters())
    assert len(star.branches()) == 2
    with pytest.raises(ValueError, match=r"takes 2 inputs \(findings, detections\)"):
        star(torch.zeros(1, 4, 32), torch.zeros(1, 4, 48), torch.zeros(1, 4, 48))
    with pytest.raises(ValueError, match=r"input 2 must be \(batch, 4, 48\)"):
        model(torch.zeros(1, 4, 32), torch.zeros(1, 4, 48), torch.zeros(1, 4, 16))
    with pytest.raises(ValueError, match=re.escape("n must be 1..5 (paper §II-C)")):
        fu.PFeat(8, 8, 8, 0)
    with pytest.raises(ValueError, match="d_density"):
        fu.PFeat(None, 8, 8, 1)
    # the seed fixes the initial weights
    a, b = fu.PFeat(8, 8, 8, 1, seed=3), fu.PFeat(8, 8, 8, 1, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_balanced_batches_draw_both_classes_equally_on_9_to_1_data():
    y = np.array([0] * 900 + [1] * 100)
    x = [np.arange(1000, dtype=np.float32)[:, None, None].repeat(4, 1)]
    of_epoch = fu.balanced_batches(x, y, batch_size=8, seed=0)
    shares = []
    for epoch in range(3):
        batches = list(of_epoch(epoch))
        labels = torch.cat([b[-1] for b in batches])
        assert len(labels) == 1000 and all(len(b[-1]) <= 8 for b in batches)
        for xb, yb in batches:  # features travel with their labels
            assert ((xb[:, 0, 0] >= 900) == (yb == 1)).all()
        shares.append(labels.float().mean().item())
    assert all(0.44 < s < 0.56 for s in shares)
    first = [b[-1] for b in fu.balanced_batches(x, y, batch_size=8, seed=0)(0)]
    again = [b[-1] for b in of_epoch(0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def toy_branches(n_patients, seed, d=16, n=1):
    """A separable toy: class 1 patients have raised findings features in one view."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_patients) % 2
    dens = rng.normal(0, 1, (n_patients, 4, d))
    find = rng.normal(0, 1, (n_patients, 4, d))
    find[:, 1, :] += 1.5 * y[:, None]
    det = rng.normal(0, 1, (n_patients, 4, n * d))
    return [dens, find, det], y


def test_train_pfeat_learns_a_separable_toy_problem():
    train, y = toy_branches(96, seed=0)
    val, yv = toy_branches(48, seed=1)
    scaler = fu.FeatureScaler().fit(train)
    model = fu.PFeat(16, 16, 16, 1, seed=0)
    hist = fu.train_pfeat(
        model, scaler.transform(train), y, scaler.transform(val), yv, epochs=30, seed=0
    )
    frame = hist.frame()
    assert {"loss", "val_loss", "val_auc"} <= set(frame.columns)
    p = fu.predict_pfeat(model, scaler.transform(val))
    assert p.shape == (48,) and ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(yv, p) > 0.9
    assert hist.best_epoch == int(frame["val_loss"].idxmin()) or hist.stopped_early
    with pytest.raises(ValueError, match="expected 3 branch arrays"):
        fu.predict_pfeat(model, scaler.transform(val)[1:])
    with pytest.raises(ValueError, match="y_val must hold only 0 and 1"):
        fu.train_pfeat(model, scaler.transform(train), y, scaler.transform(val), yv + 1, epochs=1)


def test_train_pfeat_without_density_runs_and_is_seeded():
    train, y = toy_branches(24, seed=2, d=8, n=2)
    val, yv = toy_branches(12, seed=3, d=8, n=2)
    runs = []
    for _ in range(2):
        model = fu.PFeat(None, 8, 8, 2, density=False, seed=1)
        fu.train_pfeat(model, train[1:], y, val[1:], yv, epochs=2, seed=4)
        runs.append(fu.predict_pfeat(model, val[1:]))
    np.testing.assert_array_equal(*runs)


# ----------------------------------------------------------------------------- padding


def test_pad_detection_features_pads_each_view_with_its_background():
    d = 3
    bg = [np.full(d, -v - 1.0) for v in range(4)]
    feats = [
        np.zeros((0, d)),
        np.array([[1, 1, 1], [2, 2, 2]], dtype=float),
        np.arange(15, dtype=float).reshape(5, d),
        [[7, 8, 9]],
    ]
    out = fu.pad_detection_features(feats, bg, 3)
    assert out.shape == (4, 3 * d)
    np.testing.assert_array_equal(out[0], np.tile(bg[0], 3))
    np.testing.assert_array_equal(out[1], [1, 1, 1, 2, 2, 2, -2, -2, -2])
    np.testing.assert_array_equal(out[2], np.arange(9))  # the first n rows, as sorted
    np.testing.assert_array_equal(out[3], [7, 8, 9, -4, -4, -4, -4, -4, -4])
    assert fu.pad_detection_features(feats, bg, 1).shape == (4, d)


def test_pad_detection_features_refuses_bad_inputs():
    bg = [np.zeros(3)] * 4
    feats = [np.zeros((1, 3))] * 4
    with pytest.raises(ValueError, match=re.escape("n must be 1..5 (paper §II-C)")):
        fu.pad_detection_features(feats, bg, 6)
    with pytest.raises(ValueError, match="4 views"):
        fu.pad_detection_features(feats[:3], bg, 1)
    with pytest.raises(ValueError, match=r"feats_per_view\[R-CC\]"):
        fu.pad_detection_features([feats[0], feats[1], np.zeros((1, 4)), feats[3]], bg, 1)
    with pytest.raises(ValueError, match="NaN"):
        fu.pad_detection_features([np.full((1, 3), np.nan)] + feats[1:], bg, 1)


def test_fit_score_models_fits_the_svm_with_fewer_folds_when_a_class_is_small():
    rng = np.random.default_rng(0)
    X = rng.random((20, 9))
    y = np.array([1, 1, 1] + [0] * 17)  # 3 positives: Platt scaling over 3 folds, not 5
    fused = fu.fit_score_models(X, y, X, y, seed=0)
    svm = fused.candidates[0].estimator
    assert svm.cv == 3 and len(fused.table) == 18
    with pytest.raises(ValueError, match="at least 2 samples of each class"):
        fu.fit_score_models(X, np.array([1] + [0] * 19), X, y, seed=0)
