"""Sphinx configuration of the workbench documentation.

Build it with ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` from the repository root.
The Markdown pages are read by MyST; the API reference is generated from the docstrings by autodoc,
with napoleon reading their numpy-style sections.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The package of this checkout, not another installed copy.
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402

project = "workbench"
author = "the workbench developers"
copyright = "the workbench developers, MIT licence"
release = workbench.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: anchors for headings down to level 3, so that pages can link to sections (page.md#section).
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# autodoc: members in source order; signatures keep their annotations as written.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": False}

# napoleon: the docstrings use numpy-style sections.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "alabaster"
html_title = f"workbench {release}"
html_theme_options = {"page_width": "1240px", "sidebar_width": "240px"}
