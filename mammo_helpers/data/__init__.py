"""The data layer: one switch between the synthetic cohort and real datasets, the manifest
schema, patient-level splits, the cohort cache, the dataset adapters and the phantom.

Every chapter (00-05) gets its images with :func:`load_source` (``mh.data.load_source``).
Submodules load lazily on first attribute access (``mh.data.manifest``, ``mh.data.splits``,
``mh.data.cohort``, ``mh.data.adapters``, ``mh.data.examples``, ``mh.data.phantom``,
``mh.data.reports``, ``mh.data.images``, ``mh.data.crops``,
``mh.data.patches``, ``mh.data.exams``, ``mh.data.casecontrol``,
``mh.data.phantom_formats``), so importing the package stays cheap and has no side effects.
"""

from __future__ import annotations

from mammo_helpers._lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    __name__,
    {
        "adapters",
        "casecontrol",
        "cohort",
        "crops",
        "examples",
        "exams",
        "images",
        "manifest",
        "patches",
        "phantom",
        "phantom_formats",
        "reports",
        "sources",
        "splits",
    },
    exported={"load_source": "sources", "SOURCES": "sources"},
)
