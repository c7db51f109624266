"""HTML pages of the workflow's markdown tables (the Snakemake report shows HTML, not markdown)."""

from __future__ import annotations

import html
from pathlib import Path

from ..io import write_text_atomic


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _inline(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    return "".join(f"<b>{p}</b>" if k % 2 else p for k, p in enumerate(parts))


def markdown_page(md_path, out_html, title: str) -> None:
    """An HTML page of one of this workflow's markdown tables (headings, paragraphs, pipe tables):
    the report displays HTML, not markdown."""
    lines = Path(md_path).read_text().splitlines()
    body, k = [], 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("|"):
            block = []
            while k < len(lines) and lines[k].startswith("|"):
                block.append(lines[k])
                k += 1
            rows = [_cells(b) for b in block if not set(b.replace("|", "").strip()) <= set("-: ")]
            head, rest = rows[0], rows[1:]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</tbody></table>")
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            body.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line.lstrip('> ').strip())}</p>")
        k += 1
    style = ("body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;margin:.6em 0}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}thead{background:#eee}")
    write_text_atomic(out_html, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                                f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
