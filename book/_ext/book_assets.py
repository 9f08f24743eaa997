"""Sphinx extension of the book: fix two script-loading glitches of Jupyter Book 1.

1. Jupyter Book adds every ``.js`` file under ``_static`` to ``html_js_files``, so the
   MathJax copied to ``_static/mathjax/`` by ``make mathjax`` would be loaded a second
   time, synchronously and on every page, besides the deferred copy that
   ``sphinx.ext.mathjax`` adds (via ``mathjax_path``) on pages with equations. The
   automatic entry is dropped.
2. Sphinx 7.4 registers an inline script added after the builder started (sphinx-thebe's
   ``const THEBE_JS_URL = ...`` configuration) twice, once with filename ``None`` and
   once with ``''``; the second copy throws "Identifier 'THEBE_JS_URL' has already been
   declared" in the browser. Duplicates are removed from each page's script list.
"""

from __future__ import annotations

MATHJAX_PREFIX = "mathjax/"


def _filename(entry) -> str:
    return entry[0] if isinstance(entry, tuple | list) else str(entry)


def drop_auto_added_mathjax(app, config) -> None:
    config.html_js_files = [
        entry for entry in config.html_js_files if not _filename(entry).startswith(MATHJAX_PREFIX)
    ]


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (
            getattr(script, "filename", script) or "",
            getattr(script, "priority", None),
            tuple(sorted((k, str(v)) for k, v in attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("config-inited", drop_auto_added_mathjax)
    app.connect("html-page-context", dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
