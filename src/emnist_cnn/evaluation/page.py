"""The page every report is: sections, each figure saved as a PNG beside index.html and embedded in it, and no
request to anywhere (a Content-Security-Policy that allows only what the page embeds). report.py (a character
model's run) and line_report.py (a line model's) fill it."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from ..config import Config
from ..errors import ReportError
from ..files import atomic_write, read_jsonl

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 28px;z-index:1}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none}main{max-width:1200px;margin:0 auto;padding:0 28px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:18px 0;padding:6px 20px 16px;
scroll-margin-top:44px}
h2{border-bottom:2px solid #1f3b57;padding-bottom:4px}figure{margin:14px 0}figcaption{color:#555;font-size:13px}
img{max-width:100%;height:auto}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 9px;text-align:right}th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}table.kv td{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;background:#f6f8fa}.card b{display:block;font-size:20px}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
.scroll{max-height:520px;overflow:auto;display:inline-block}.scroll thead th{position:sticky;top:0}
.muted{color:#666}
"""

# Sorts the table whose header was clicked by the cells' data-value (numbers), toggling the direction.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var value = function (row) { var v = parseFloat(row.cells[col].dataset.value); return isNaN(v) ? -Infinity : v; };
    Array.from(body.rows)
      .sort(function (a, b) { return (value(a) - value(b)) * (ascending ? 1 : -1); })
      .forEach(function (row) { body.appendChild(row); });
  });
});
"""

# Self-contained by construction: the page may load nothing but what it embeds.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

esc = html.escape


def kv_table(rows: dict) -> str:
    return '<table class="kv">' + "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                                          for k, v in rows.items()) + "</table>"


class Page:
    """Collects sections; each figure is saved as a PNG beside index.html and embedded in it."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.sections: list[tuple[str, str, str]] = []
        self.figures: list[str] = []

    def figure(self, fig, name: str, caption: str) -> str:
        import matplotlib.pyplot as plt
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        png = buf.getvalue()
        atomic_write(self.out_dir / f"{name}.png", lambda p: p.write_bytes(png))
        self.figures.append(f"{name}.png")
        data = base64.b64encode(png).decode("ascii")
        return (f'<figure id="fig-{esc(name)}"><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)} <span class=\"muted\">({esc(name)}.png)</span></figcaption></figure>")

    def section(self, anchor: str, title: str, body: str) -> None:
        self.sections.append((anchor, title, body))

    def html(self, title: str, subtitle: str) -> str:
        nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in self.sections)
        body = "".join(f'<section id="{a}"><h2>{esc(t)}</h2>{b}</section>' for a, t, b in self.sections)
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{STYLE}</style></head><body>'
                f"<header><h1>{esc(title)}</h1><div>{esc(subtitle)}</div></header><nav>{nav}</nav>"
                f"<main>{body}</main><script>{SCRIPT}</script></body></html>")


def load_run(run_dir: Path) -> tuple[Config, dict, list[dict]]:
    """config.json (with its _environment) and metrics.jsonl, or a ReportError naming the file."""
    config_path, rows_path = run_dir / "config.json", run_dir / "metrics.jsonl"
    if not config_path.is_file():
        raise ReportError(f"{run_dir}: not a run directory (no config.json)")
    try:
        raw = json.loads(config_path.read_text())
        rows = read_jsonl(rows_path) if rows_path.is_file() else []  # a torn last line as resume drops it
    except ValueError as err:
        raise ReportError(f"{run_dir}: invalid JSON in config.json or metrics.jsonl ({err})") from None
    return Config.from_dict(raw), raw.get("_environment", {}), rows
