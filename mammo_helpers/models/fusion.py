"""Patient meta-models of paper 04 (Wimmer et al., "Multi-task fusion", §II-C, §III-A.4):
fusing the density model D, the findings model F and the lesion detector L of one patient's
four views (:data:`~mammo_helpers.vocab.FOUR_VIEWS` order: L-CC, L-MLO, R-CC, R-MLO) into a
lesion or a malignancy prediction (chapter 04).

**Score fusion** (P_score, §II-C.1, eq. 1). :func:`score_vector` concatenates the
patient's density score p_D, the four findings scores p_F^v and, per view, the top-``n``
detection scores p_L^{v,n} (descending, 0 where fewer were found; for the malignancy target
only detections of malignant masses and calcifications count). :func:`fit_score_models`
fits the three families of §III-A.4a on every point of the paper's grids (:data:`SVM_C`,
:data:`RF_TREES`, :data:`MLP_LAYOUTS`) and keeps the candidate with the highest validation
AUC, ties broken by the validation recall (the paper: "selected based on validation AUC and
recall"); the best of each family gives Table VI, the overall best Table V's P_score row.
The number of detections ``n`` (:data:`N_DETECTIONS`) is searched by the caller, one
:func:`fit_score_models` per ``n``.

Choices the paper leaves open:

* SVM probabilities: ``SVC(probability=True)`` is deprecated in scikit-learn 1.9, so the
  SVM is its documented replacement ``CalibratedClassifierCV(SVC(kernel="rbf", C=c),
  method="sigmoid", ensemble=False)``: one RBF SVM on all training data, its decision
  values mapped to a probability by Platt scaling fitted on 5-fold (stratified, unshuffled,
  so deterministic) cross-validated decision values. AUC and recall are computed on these
  probabilities, i.e. on what :meth:`ScoreFusion.predict` returns (for every family alike).
* No input scaling for P_score: every entry of eq. 1 already lies in [0, 1].
* MLPs: scikit-learn's ``MLPClassifier`` (Adam, its defaults otherwise) with the hidden
  layers ``(|w|,)``, ``(|w|, |w|)``, ``(|w|, |w|//2)``; the paper's output layer "2" is
  the classifier's own (one logistic unit, the two-class softmax). ``|w| = 5 + 4n`` is odd,
  so ``|w|/2`` is rounded down. ``max_iter`` 3000, no early stopping; the table's
  ``converged`` column says whether the optimiser stopped before that.
* Random forests: ``RandomForestClassifier(n_estimators=t, random_state=seed)``.
* Recall is the TPR at the threshold 0.5.

**Feature fusion** (P_feat, §II-C.2, Fig. 7, §III-A.4b). :class:`FeatureScaler` maps each
feature to [-1, 1] with a ``MinMaxScaler`` fitted on the training patients only;
:class:`PFeat` is the embedding network of Fig. 7, :func:`train_pfeat` its recipe (Adam,
lr 5e-4, batch 8, balanced batches, early stopping on the validation loss with patience 10,
tolerance 0.001) through :func:`mammo_helpers.training.fit`, :func:`predict_pfeat` its
p(positive). :func:`pad_detection_features` builds the localisation input: the top-``n``
detection features of each view, padded with that view's background feature.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mammo_helpers import devices, training
from mammo_helpers.vocab import FOUR_VIEWS, LESION_CLASSES

__all__ = [
    "FAMILIES",
    "FAMILY_TITLES",
    "MALIGNANT_CLASSES",
    "MLP_LAYOUTS",
    "N_DETECTIONS",
    "RF_TREES",
    "SVM_C",
    "TARGETS",
    "VIEW_NAMES",
    "Candidate",
    "FeatureScaler",
    "PFeat",
    "ScoreFusion",
    "balanced_batches",
    "fit_score_models",
    "mlp_layouts",
    "pad_detection_features",
    "predict_pfeat",
    "score_names",
    "score_vector",
    "train_pfeat",
]

#: The SVM's regularisation grid (§III-A.4a, in ascending order).
SVM_C: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 500, 1000)
#: The random forest's numbers of trees (§III-A.4a).
RF_TREES: tuple[int, ...] = (3, 5, 7, 10, 15, 20)
#: The MLP's hidden layers as functions of the input size |w| (§III-A.4a:
#: [|w|, 2], [|w|, |w|, 2], [|w|, |w|/2, 2]; the output layer 2 is the classifier's own).
MLP_LAYOUTS: tuple[Callable[[int], tuple[int, ...]], ...] = (
    lambda w: (w,),
    lambda w: (w, w),
    lambda w: (w, max(1, w // 2)),
)
#: The numbers of detections per view searched for P_score and P_feat (§II-C, §III-A.4).
N_DETECTIONS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: The two patient predictions (§II-C): any lesion, any malignant lesion.
TARGETS: tuple[str, ...] = ("lesion", "malignancy")
#: The detector classes that count for the malignancy target (§II-C.1).
MALIGNANT_CLASSES: tuple[str, ...] = tuple(c for c in LESION_CLASSES if c.startswith("malignant"))
#: The P_score families, in the order of the table (keys of ``best_per_family``).
FAMILIES: tuple[str, ...] = ("svm", "random_forest", "mlp")
#: Their names in Table VI.
FAMILY_TITLES: dict[str, str] = {"svm": "SVM", "random_forest": "Random Forest", "mlp": "MLP"}
#: "L-CC", "L-MLO", "R-CC", "R-MLO".
VIEW_NAMES: tuple[str, ...] = tuple(f"{side}-{view}" for side, view in FOUR_VIEWS)

MLP_MAX_ITER = 3000
#: The Platt scaling folds of the SVM.
SVM_CALIBRATION_FOLDS = 5


# ----------------------------------------------------------------------------- eq. 1


def _check_n(n, where: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n not in N_DETECTIONS:
        raise ValueError(f"{where}: n must be 1..5 (paper §II-C), got {n!r}")
    return int(n)


def _check_target(target, where: str) -> str:
    if not isinstance(target, str) or target not in TARGETS:
        raise ValueError(f"{where}: target must be one of {', '.join(TARGETS)}; got {target!r}")
    return target


def _probability(value, what: str, where: str) -> float:
    """A score in [0, 1], else ``ValueError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}: {what} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also False for NaN
        raise ValueError(f"{where}: {what} must be in [0, 1], got {value!r}")
    return value


def _lesion_class(label, what: str, where: str) -> str:
    """A class name of LESION_CLASSES, or a detector label 1..4 (models.detection's
    convention: LESION_CLASSES order, 0 the background) turned into one."""
    if isinstance(label, numbers.Integral) and not isinstance(label, bool | np.bool_):
        if 1 <= label <= len(LESION_CLASSES):
            return LESION_CLASSES[int(label) - 1]
    elif isinstance(label, str) and label in LESION_CLASSES:
        return str(label)
    raise ValueError(
        f"{where}: {what} has the unknown lesion class {label!r}; expected one of "
        f"{', '.join(LESION_CLASSES)} or a detector label 1..{len(LESION_CLASSES)}"
    )


def _view_detections(dets, view: str, where: str) -> list[tuple[float, str]]:
    """One view's detections as ``(score, lesion_class)`` pairs, checked."""
    what = f"detections[{view}]"
    if isinstance(dets, Mapping):
        missing = {"scores", "labels"} - set(dets)
        if missing:
            raise ValueError(f"{where}: {what} needs the keys 'scores' and 'labels'")
        scores, labels = list(np.ravel(dets["scores"])), list(np.ravel(dets["labels"]))
        if len(scores) != len(labels):
            raise ValueError(f"{where}: {what} has {len(scores)} scores but {len(labels)} labels")
        pairs = list(zip(scores, labels, strict=True))
    elif isinstance(dets, str) or not isinstance(dets, Sequence | np.ndarray):
        raise ValueError(
            f"{where}: {what} must be a list of (score, lesion_class) pairs or a dict "
            f"with 'scores' and 'labels', got {type(dets).__name__}"
        )
    else:
        pairs = list(dets)
    out = []
    for k, pair in enumerate(pairs):
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"{where}: {what}[{k}] must be a (score, lesion_class) pair")
        score, label = pair
        if isinstance(score, np.generic):
            score = score.item()
        score = _probability(score, f"{what}[{k}] score", where)
        out.append((score, _lesion_class(label, f"{what}[{k}]", where)))
    return out


def score_vector(
    p_dense: float | None,
    p_findings: Sequence[float],
    detections: Sequence,
    *,
    n: int,
    target: str,
    patient: str = "",
) -> np.ndarray:
    """Eq. 1's vector ``w_p`` of one patient (§II-C.1):
    ``[p_D, p_F[L-CC], p_F[L-MLO], p_F[R-CC], p_F[R-MLO], p_L[L-CC]#1..#n, ...,
    p_L[R-MLO]#1..#n]``: the density score (left out when ``p_dense`` is None, the P*
    ablation of §IV-C.3), the findings scores of the four views in FOUR_VIEWS order, then
    per view its ``n`` highest detection scores in descending order, 0 where fewer were
    found. For ``target="malignancy"`` only detections of MALIGNANT_CLASSES count.

    ``detections`` holds one entry per view (FOUR_VIEWS order): a list of
    ``(score, lesion_class)`` pairs or a dict ``{"scores": [...], "labels": [...]}`` (one
    image's output of :func:`mammo_helpers.models.detection.detect` as it is; other keys are
    ignored), each class a name of LESION_CLASSES or a detector label 1..4 (LESION_CLASSES
    order; 0, the background, is refused). Length ``5 + 4n`` (``4 + 4n`` without density).
    ``patient`` is only used in error messages."""
    where = f"score_vector (patient {patient!r})" if patient else "score_vector"
    n = _check_n(n, where)
    target = _check_target(target, where)
    head = [] if p_dense is None else [_probability(p_dense, "p_dense", where)]
    for name, values in (("p_findings", p_findings), ("detections", detections)):
        if isinstance(values, str | Mapping) or not isinstance(values, Sequence | np.ndarray):
            raise ValueError(f"{where}: {name} must be a sequence of 4 views ({VIEW_NAMES})")
        if len(values) != len(FOUR_VIEWS):
            raise ValueError(
                f"{where}: {name} must have 4 views ({', '.join(VIEW_NAMES)}), got {len(values)}"
            )
    head += [
        _probability(p, f"p_findings[{v}]", where)
        for p, v in zip(np.asarray(p_findings, dtype=object), VIEW_NAMES, strict=True)
    ]
    tail = []
    for dets, view in zip(detections, VIEW_NAMES, strict=True):
        pairs = _view_detections(dets, view, where)
        scores = sorted(
            (s for s, c in pairs if target == "lesion" or c in MALIGNANT_CLASSES), reverse=True
        )[:n]
        tail += scores + [0.0] * (n - len(scores))
    return np.asarray(head + tail, dtype=float)


def score_names(n: int, target: str, density: bool = True) -> list[str]:
    """The name of each entry of :func:`score_vector`: ``"p_D"``, ``"p_F[L-CC]"``, ...,
    ``"p_L[L-CC]#1"`` (lesion target) or ``"p_Lmal[L-CC]#1"`` (malignancy target: scores of
    malignant detections only)."""
    n = _check_n(n, "score_names")
    target = _check_target(target, "score_names")
    det = "p_L" if target == "lesion" else "p_Lmal"
    names = ["p_D"] if density else []
    names += [f"p_F[{v}]" for v in VIEW_NAMES]
    names += [f"{det}[{v}]#{k}" for v in VIEW_NAMES for k in range(1, n + 1)]
    return names


# ----------------------------------------------------------------------------- P_score


def mlp_layouts(n_features: int) -> list[tuple[int, ...]]:
    """The MLP's hidden layers for inputs of size ``n_features`` (:data:`MLP_LAYOUTS`)."""
    return [layout(int(n_features)) for layout in MLP_LAYOUTS]


@dataclass
class Candidate:
    """One fitted point of a grid and its validation scores."""

    family: str
    name: str
    params: dict
    estimator: Any = field(repr=False)
    val_auc: float = math.nan
    val_recall: float = math.nan

    def predict(self, X) -> np.ndarray:
        """p(positive) of each row of ``X``."""
        X = _matrix(X, "X", self.estimator.n_features_in_)
        return self.estimator.predict_proba(X)[:, 1]


@dataclass
class ScoreFusion:
    """The result of :func:`fit_score_models`: the selected candidate, every candidate's
    validation scores (``table``, one row per grid point) and the best of each family
    (Table VI)."""

    best: Candidate
    table: Any  # pandas.DataFrame
    best_per_family: dict[str, Candidate]
    candidates: list[Candidate] = field(default_factory=list, repr=False)

    def predict(self, X) -> np.ndarray:
        """p(positive) of each row of ``X`` from the selected model."""
        return self.best.predict(X)


def _matrix(X, name: str, n_features: int | None = None) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric 2-D array: {err}") from None
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))[:5].tolist()
        raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf values (rows {rows}...)")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} columns, the model {n_features}")
    return X


def _labels(y, name: str, n_rows: int, x_name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(
            f"{name} must be 1-D with one label per row of {x_name} ({n_rows}), got shape {y.shape}"
        )
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"{name} holds NaN")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1, got {sorted(set(y.tolist()))[:5]}")
    y = y.astype(int)
    if y.min() == y.max():
        raise ValueError(f"{name} has one class only ({int(y[0])}); both are needed")
    return y


def _candidates(n_features: int, seed: int, folds: int) -> list[tuple[str, str, dict, Any]]:
    """Every grid point, unfitted: ``(family, name, params, estimator)``; the SVM's Platt
    scaling over ``folds`` stratified folds."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    out = []
    for c in SVM_C:
        svm = CalibratedClassifierCV(
            SVC(kernel="rbf", C=c), method="sigmoid", cv=folds, ensemble=False
        )
        out.append(("svm", f"SVM(C={c:g})", {"C": c}, svm))
    for t in RF_TREES:
        rf = RandomForestClassifier(n_estimators=t, random_state=seed, n_jobs=1)
        out.append(("random_forest", f"RF(trees={t})", {"n_estimators": t}, rf))
    for layout in mlp_layouts(n_features):
        mlp = MLPClassifier(
            hidden_layer_sizes=layout,
            max_iter=MLP_MAX_ITER,
            early_stopping=False,
            random_state=seed,
        )
        out.append(("mlp", f"MLP{list(layout)}", {"hidden_layer_sizes": layout}, mlp))
    return out


def _best(candidates: Sequence[Candidate]) -> Candidate:
    """Highest validation AUC, ties broken by the higher recall, then the earlier grid
    point."""
    order = sorted(
        range(len(candidates)),
        key=lambda i: (-candidates[i].val_auc, -candidates[i].val_recall, i),
    )
    return candidates[order[0]]


def fit_score_models(X_train, y_train, X_val, y_val, *, seed: int = 0) -> ScoreFusion:
    """Fit every candidate of §III-A.4a (:data:`SVM_C` x RBF SVM, :data:`RF_TREES` x
    random forest, :data:`MLP_LAYOUTS` x MLP; 18 in all) on the score vectors ``X_train``
    (rows from :func:`score_vector`) and labels ``y_train`` (0/1), score each on the
    validation set (AUC and recall = TPR at 0.5) and select the one with the highest
    validation AUC, ties broken by the recall. Deterministic for a given ``seed``."""
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning

    from mammo_helpers.metrics import roc_auc

    X_train = _matrix(X_train, "X_train")
    X_val = _matrix(X_val, "X_val", X_train.shape[1])
    y_train = _labels(y_train, "y_train", len(X_train), "X_train")
    y_val = _labels(y_val, "y_val", len(X_val), "X_val")
    # Platt scaling needs every fold to hold both classes: fewer folds for a tiny class
    folds = min(SVM_CALIBRATION_FOLDS, int(np.bincount(y_train, minlength=2).min()))
    if folds < 2:
        raise ValueError(
            "fit_score_models: y_train needs at least 2 samples of each class "
            f"(the SVM's Platt scaling is cross-validated); got {np.bincount(y_train).tolist()}"
        )
    candidates, rows = [], []
    for family, name, params, estimator in _candidates(X_train.shape[1], seed, folds):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        p = estimator.predict_proba(X_val)[:, 1]
        cand = Candidate(
            family,
            name,
            dict(params),
            estimator,
            val_auc=roc_auc(y_val, p),
            val_recall=float(np.mean(p[y_val == 1] >= 0.5)),
        )
        candidates.append(cand)
        n_iter = getattr(estimator, "n_iter_", None)
        rows.append(
            {
                "family": family,
                "name": name,
                "params": dict(params),
                "val_auc": cand.val_auc,
                "val_recall": cand.val_recall,
                "converged": True if n_iter is None else bool(n_iter < MLP_MAX_ITER),
                "fit_seconds": seconds,
            }
        )
    table = pd.DataFrame(rows)
    best = _best(candidates)
    table["selected"] = [c is best for c in candidates]
    per_family = {
        f: _best([c for c in candidates if c.family == f])
        for f in FAMILIES
        if any(c.family == f for c in candidates)
    }
    return ScoreFusion(best, table, per_family, candidates)


# ----------------------------------------------------------------------------- P_feat


def _branches(arrays, where: str, count: int | None = None) -> list[np.ndarray]:
    """The branch arrays (N, 4, d) as float arrays, checked."""
    if isinstance(arrays, np.ndarray | torch.Tensor) or not isinstance(arrays, Sequence):
        raise ValueError(
            f"{where}: arrays must be a list of branch arrays (N, 4, d): (density,) findings, "
            "detections"
        )
    if count is not None and len(arrays) != count:
        raise ValueError(f"{where}: expected {count} branch arrays, got {len(arrays)}")
    out = []
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 3 or a.shape[1] != len(FOUR_VIEWS) or a.shape[0] == 0 or a.shape[2] == 0:
            raise ValueError(
                f"{where}: branch array {i} must be (N, 4 views, d) with N, d > 0, got {a.shape}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: branch array {i} holds NaN/inf values")
        if out and len(a) != len(out[0]):
            raise ValueError(
                f"{where}: branch arrays have different numbers of patients "
                f"({len(out[0])} and {len(a)})"
            )
        out.append(a)
    if not out:
        raise ValueError(f"{where}: no branch array")
    return out


class FeatureScaler:
    """φ of §III-A.4b: each feature to [-1, 1] by ``MinMaxScaler(feature_range=(-1, 1))``,
    one per branch array (N, 4, d), each (view, feature) column on its own, fitted on the
    training patients only. On validation and test data the map stays the training one, so
    values may fall outside [-1, 1]; they are not clipped (clipping would hide how far a
    patient lies outside the training range). A constant training column maps to -1."""

    def __init__(self):
        self.scalers: list | None = None
        self.shapes: list[tuple[int, int]] | None = None

    def fit(self, arrays) -> FeatureScaler:
        from sklearn.preprocessing import MinMaxScaler

        arrays = _branches(arrays, "FeatureScaler.fit")
        self.shapes = [a.shape[1:] for a in arrays]
        self.scalers = [
            MinMaxScaler(feature_range=(-1, 1)).fit(a.reshape(len(a), -1)) for a in arrays
        ]
        return self

    def transform(self, arrays) -> list[np.ndarray]:
        if self.scalers is None:
            raise ValueError("FeatureScaler.transform: call fit on the training arrays first")
        arrays = _branches(arrays, "FeatureScaler.transform", len(self.scalers))
        out = []
        for i, (a, scaler, shape) in enumerate(zip(arrays, self.scalers, self.shapes, strict=True)):
            if a.shape[1:] != shape:
                raise ValueError(
                    f"FeatureScaler.transform: branch array {i} is {a.shape[1:]} per patient, "
                    f"fitted on {shape}"
                )
            out.append(scaler.transform(a.reshape(len(a), -1)).reshape(a.shape).astype(np.float32))
        return out

    def fit_transform(self, arrays) -> list[np.ndarray]:
        return self.fit(arrays).transform(arrays)


def _branch(blocks: int, channels: Sequence[int], kernel_size: int, pool: int) -> nn.Sequential:
    layers, in_ch = [], len(FOUR_VIEWS)
    for ch in channels[:blocks]:
        layers += [
            nn.Conv1d(in_ch, ch, kernel_size, padding=kernel_size // 2),
            nn.ReLU(),
            nn.MaxPool1d(pool, ceil_mode=True),
        ]
        in_ch = ch
    return nn.Sequential(*layers, nn.Flatten())


class PFeat(nn.Module):
    """The patient meta-model P_feat of Fig. 7: one 1-D convolutional branch per model,
    its input (batch, 4, length) with one channel per view (FOUR_VIEWS order):

    * density ``(B, 4, d_density)`` and findings ``(B, 4, d_findings)``: 2 blocks,
    * localisation ``(B, 4, n * d_detection)`` (the ``n`` detection features of a view one
      after another, :func:`pad_detection_features`): 3 blocks,

    a block being ``Conv1d(kernel_size, same padding) -> ReLU -> MaxPool1d(pool,
    ceil_mode)`` with ``channels[i]`` output channels; then ReLU, concatenation of the
    flattened branches, ReLU (both as in Fig. 7; they change nothing after a ReLU and a
    max-pool, but keep the figure's layout), ``Linear(hidden) -> Dropout(dropout) ->
    Linear(2)``. No activation between the two dense layers: the paper names none (Keras's
    default is linear). ``forward`` returns the logits; the softmax is applied at prediction
    (:func:`predict_pfeat`).

    Sizes (the paper names none): kernel 3, pool 2, channels (16, 32, 32), hidden 64. A
    branch of length L flattens to ``channels[-1] * ceil(L / 2**blocks)`` values, so any
    length >= 1 works: d = 16 gives 128 + 128 + 64 (n = 1) inputs to the head; the paper's
    d = 1024 with n = 5 gives 8192 + 8192 + 20480, a 2.4 M-weight first dense layer.

    ``density=False`` builds P*_feat (§IV-C.3) without the density branch: ``forward``
    then takes (findings, detections) only and ``d_density`` may be None. ``seed`` fixes
    the initial weights (None: torch's global generator)."""

    def __init__(
        self,
        d_density: int | None,
        d_findings: int,
        d_detection: int,
        n: int,
        *,
        density: bool = True,
        kernel_size: int = 3,
        pool: int = 2,
        channels: Sequence[int] = (16, 32, 32),
        hidden: int = 64,
        dropout: float = 0.1,
        seed: int | None = 0,
    ):
        super().__init__()
        n = _check_n(n, "PFeat")
        for name, value in (
            ("d_findings", d_findings),
            ("d_detection", d_detection),
            ("kernel_size", kernel_size),
            ("pool", pool),
            ("hidden", hidden),
            *((("d_density", d_density),) if density else ()),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"PFeat: {name} must be an integer >= 1, got {value!r}")
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError(f"PFeat: channels must be 3 integers >= 1, got {channels!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"PFeat: dropout must be in [0, 1), got {dropout!r}")
        self.density, self.n = bool(density), n
        self.lengths = ((int(d_density),) if density else ()) + (
            int(d_findings),
            n * int(d_detection),
        )
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            if density:
                self.density_branch = _branch(2, channels, kernel_size, pool)
            self.findings_branch = _branch(2, channels, kernel_size, pool)
            self.detection_branch = _branch(3, channels, kernel_size, pool)
            with torch.no_grad():
                width = sum(
                    b(torch.zeros(1, len(FOUR_VIEWS), length)).shape[1]
                    for b, length in zip(self.branches(), self.lengths, strict=True)
                )
            self.head = nn.Sequential(
                nn.Linear(width, hidden), nn.Dropout(dropout), nn.Linear(hidden, 2)
            )
        self.n_concat = int(width)

    def branches(self) -> list[nn.Module]:
        """The branches in input order: (density,) findings, detections."""
        own = [self.findings_branch, self.detection_branch]
        return [self.density_branch, *own] if self.density else own

    def forward(self, *inputs):
        if len(inputs) != len(self.lengths):
            names = "(density, findings, detections)" if self.density else "(findings, detections)"
            raise ValueError(f"PFeat takes {len(self.lengths)} inputs {names}, got {len(inputs)}")
        parts = []
        for i, (x, branch, length) in enumerate(
            zip(inputs, self.branches(), self.lengths, strict=True)
        ):
            if x.ndim != 3 or x.shape[1] != len(FOUR_VIEWS) or x.shape[2] != length:
                raise ValueError(
                    f"PFeat: input {i} must be (batch, 4, {length}), got {tuple(x.shape)}"
                )
            parts.append(torch.relu(branch(x)))
        return self.head(torch.relu(torch.cat(parts, dim=1)))


def _tensors(model: PFeat, arrays, where: str) -> list[torch.Tensor]:
    arrays = _branches(arrays, where, len(model.lengths))
    for i, (a, length) in enumerate(zip(arrays, model.lengths, strict=True)):
        if a.shape[2] != length:
            raise ValueError(
                f"{where}: branch array {i} has length {a.shape[2]}, the model {length}"
            )
    return [torch.as_tensor(a, dtype=torch.float32) for a in arrays]


def balanced_batches(arrays, y, *, batch_size: int = 8, seed: int = 0):
    """``batches(epoch)`` for :func:`~mammo_helpers.training.fit` with the classes
    balanced (§III-A.4b: "batches were balanced to ensure equal distribution of classes"):
    each epoch draws ``len(y)`` patients with replacement, each with probability
    proportional to 1 / (its class's count), so every draw is positive with probability
    1/2 (a minority patient is seen several times per epoch, some majority patients not at
    all), seeded by ``seed`` and the epoch. Batches are ``(*branch tensors, labels)``."""
    xs = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(
            f"balanced_batches: batch_size must be an integer >= 1, got {batch_size!r}"
        )
    # the task models' balanced sampling (one definition; raises without both classes)
    from mammo_helpers.models.task_training import _epoch_order

    def balanced_order(labels, gen):
        return _epoch_order(labels, gen, True)

    balanced_order(y, torch.Generator())  # both classes present, else a clear error now

    def of_epoch(epoch: int):
        gen = torch.Generator().manual_seed(int(seed) * 10_007 + int(epoch))
        idx = balanced_order(y, gen)
        for i in range(0, len(idx), batch_size):
            b = idx[i : i + batch_size]
            yield (*(x[b] for x in xs), y[b])

    return of_epoch


def _ce_loss(model, batch):
    *xs, y = batch
    return nn.functional.cross_entropy(model(*xs), y)


def _logits(model, xs: list[torch.Tensor], batch_size: int = 256) -> torch.Tensor:
    """The model's logits for the branch tensors ``xs``, computed on its device, on the CPU."""
    device = devices.model_device(model)
    out = [
        model(*(x[i : i + batch_size].to(device) for x in xs)).cpu()
        for i in range(0, len(xs[0]), batch_size)
    ]
    return torch.cat(out)


def train_pfeat(
    model: PFeat,
    train_arrays,
    y_train,
    val_arrays,
    y_val,
    *,
    epochs: int,
    lr: float = 5e-4,
    batch_size: int = 8,
    patience: int = 10,
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
) -> training.History:
    """Train ``model`` in place (§III-A.4b): Adam at ``lr``, cross-entropy on the logits,
    :func:`balanced_batches` of ``batch_size``, early stopping on the validation loss with
    ``patience`` epochs and tolerance 0.001, the best epoch's weights kept. The arrays are
    lists of branch arrays (N, 4, d), already scaled (:class:`FeatureScaler`). Returns the
    per-epoch history (loss, val_loss, val_auc, lr). ``precision``: ``PRECISION``, as in
    ``training.fit``."""
    from mammo_helpers.metrics import roc_auc

    xs_train = _tensors(model, train_arrays, "train_pfeat: train_arrays")
    xs_val = _tensors(model, val_arrays, "train_pfeat: val_arrays")
    y_train = _labels(y_train, "y_train", len(xs_train[0]), "train_arrays")
    y_val = _labels(y_val, "y_val", len(xs_val[0]), "val_arrays")
    if not (isinstance(lr, numbers.Real) and 0 < lr < math.inf):
        raise ValueError(f"train_pfeat: lr must be a positive number, got {lr!r}")
    yv = torch.as_tensor(y_val)

    def validate(m):
        logits = _logits(m, xs_val)
        p = torch.softmax(logits.double(), 1)[:, 1].numpy()
        return {
            "val_loss": nn.functional.cross_entropy(logits, yv).item(),
            "val_auc": roc_auc(y_val, p),
        }

    torch.manual_seed(seed)
    return training.fit(
        model,
        balanced_batches(xs_train, y_train, batch_size=batch_size, seed=seed),
        _ce_loss,
        torch.optim.Adam(model.parameters(), lr=lr),
        epochs=epochs,
        validate=validate,
        stopper=training.EarlyStopping("val_loss", "min", patience=patience, min_delta=1e-3),
        progress=progress,
        precision=precision,
        desc="P_feat",
    )


def predict_pfeat(model: PFeat, arrays, *, batch_size: int = 256) -> np.ndarray:
    """p(positive) (N,): the softmax of the logits, in eval mode, on the model's device."""
    xs = _tensors(model, arrays, "predict_pfeat")
    model.eval()
    with torch.inference_mode():
        return torch.softmax(_logits(model, xs, batch_size).double(), 1)[:, 1].numpy()


def pad_detection_features(feats_per_view, background, n: int) -> np.ndarray:
    """The localisation input of one patient (4, n * d): per view (FOUR_VIEWS order) its
    first ``n`` detection features (rows of a (k_v, d) array the caller sorted by score and,
    for the malignancy target, restricted to malignant classes), one after another, the
    missing ones replaced by that view's background feature (d,) (§II-C.2: "background
    features are pooled from the feature map")."""
    where = "pad_detection_features"
    n = _check_n(n, where)
    if len(feats_per_view) != len(FOUR_VIEWS) or len(background) != len(FOUR_VIEWS):
        raise ValueError(
            f"{where}: feats_per_view and background must have 4 views ({', '.join(VIEW_NAMES)}), "
            f"got {len(feats_per_view)} and {len(background)}"
        )
    rows, d = [], None
    for view, feats, bg in zip(VIEW_NAMES, feats_per_view, background, strict=True):
        bg = np.asarray(bg, dtype=float)
        if bg.ndim != 1 or bg.size == 0:
            raise ValueError(f"{where}: background[{view}] must be a (d,) vector, got {bg.shape}")
        d = bg.size if d is None else d
        feats = np.asarray(feats, dtype=float)
        if feats.size == 0:
            feats = np.zeros((0, d))
        if feats.ndim != 2 or feats.shape[1] != d or bg.size != d:
            raise ValueError(
                f"{where}: feats_per_view[{view}] must be (k, {d}) with background ({d},), "
                f"got {feats.shape} and {bg.shape}"
            )
        if not (np.isfinite(feats).all() and np.isfinite(bg).all()):
            raise ValueError(f"{where}: view {view} holds NaN/inf features")
        top = feats[:n]
        pad = np.repeat(bg[None], n - len(top), axis=0)
        rows.append(np.concatenate([top, pad]).reshape(-1))
    return np.stack(rows)
