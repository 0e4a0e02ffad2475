"""Small HTML pieces the panels share: the stylesheet, tables, error and title boxes."""

from __future__ import annotations

import html
import traceback

import numpy as np
import pandas as pd

#: One stylesheet for every panel; each panel includes it so it also looks right alone in a cell.
STYLE = """
<style>
.wb-app, .wb-panel { font-family: Inter, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; }
.wb-title { font-size: 22px; font-weight: 650; margin: 2px 0 0 0; }
.wb-subtitle { font-size: 13.5px; color: #52606d; margin: 2px 0 6px 0; }
.wb-section { font-size: 16px; font-weight: 600; margin: 10px 0 2px 0; }
.wb-summary { font-size: 14px; line-height: 1.5; padding: 6px 10px; background: #f5f7fa; border-radius: 6px; }
.wb-muted { color: #616e7c; }
.wb-error { font-size: 14px; padding: 8px 12px; background: #fdecea; color: #8a1c12;
            border-left: 4px solid #d64545; border-radius: 4px; white-space: pre-wrap; }
.wb-table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
.wb-table th { text-align: right; font-weight: 600; padding: 3px 10px; border-bottom: 2px solid #cbd2d9; }
.wb-table th:first-child, .wb-table td:first-child { text-align: left; }
.wb-table td { text-align: right; padding: 2px 10px; border-bottom: 1px solid #e4e7eb; }
.wb-table td.wb-missing { color: #9aa5b1; }
.wb-table tr:hover td { background: #f0f4f8; }
</style>
"""


def table(df: pd.DataFrame, formats: dict[str, str] | None = None, missing: str = "—") -> str:
    """An HTML table of ``df`` (index as the first column); NaN cells print ``missing``."""
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [df.index.name or "", *df.columns])
    rows = []
    for key, row in df.iterrows():
        cells = [f"<td>{html.escape(str(key))}</td>"]
        for col, value in row.items():
            if isinstance(value, float) and np.isnan(value):
                cells.append(f'<td class="wb-missing">{missing}</td>')
            else:
                text = format(value, formats[col]) if col in formats else str(value)
                cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="wb-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def error_box(error: BaseException, action: str) -> str:
    """A readable box for an exception caught while doing ``action``; unexpected error types also
    carry their traceback, folded, so a bug report has it."""
    from ..data.errors import DatasetError

    # str() of a KeyError is the repr of its message, quotes included.
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    message = html.escape(str(text) or type(error).__name__)
    expected = (DatasetError, FileNotFoundError, KeyError, IsADirectoryError, PermissionError)
    title = f"Could not {html.escape(action)}"
    if isinstance(error, expected):
        return f'<div class="wb-error"><b>{title}</b><br>{message}</div>'
    trace = html.escape("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return (
        f'<div class="wb-error"><b>{title}</b><br>{type(error).__name__}: {message}'
        f"<details><summary>details</summary><pre>{trace}</pre></details></div>"
    )
