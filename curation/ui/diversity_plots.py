"""The diversity tab's display values: the map, coverage and flag plots, duplicate groups side by side. User text escaped."""
from __future__ import annotations

import difflib
import html
import re
import textwrap
from typing import Any

import pandas as pd
import plotly.graph_objects as go

STATUS_COLORS = {"draft": "#94a3b8", "submitted": "#f59e0b", "approved": "#22c55e", "rejected": "#ef4444",
                 "discarded": "#6b7280"}
PALETTE = ["#6366f1", "#f97316", "#10b981", "#ef4444", "#0ea5e9", "#a855f7", "#eab308", "#14b8a6", "#ec4899",
           "#84cc16", "#64748b", "#f43f5e", "#22d3ee", "#8b5cf6", "#d97706", "#059669"]
COLOR_BY = {"Cluster": "cluster", "Category": "category", "Status": "status", "Quality flag": "flag"}
WEBGL_FROM = 3000  # points: past this, the map draws with WebGL
FLAG_MEANING = {
    "instruction_length": "3 words or fewer, or over 150 (Self-Instruct)",
    "blacklisted_word": "asks for an image, file, plot, audio… a text model cannot see or make (Self-Instruct)",
    "bad_first_character": "starts with punctuation or a non-ASCII character (Self-Instruct)",
    "input_equals_output": "the output only repeats the input (Self-Instruct)",
    "empty_output": "no output (Self-Instruct)",
    "ends_with_colon": "input or output ends in ':' — cut short (Self-Instruct)",
    "placeholder_output": "<nooutput> or a similar placeholder (Alpaca cleaning)",
    "placeholder_input": "\"<noinput>\", \"No input\"… instead of an empty input (Alpaca cleaning)",
    "url_only_input": "the input is only a URL the model cannot open (Alpaca cleaning)",
    "repeats_instruction": "the output only repeats the instruction",
    "extreme_length": "the record is extremely long",
}
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def _layout(figure: go.Figure, title: str, height: int) -> go.Figure:
    figure.update_layout(title=dict(text=title, font=dict(size=15)), height=height, template="plotly_white",
                         margin=dict(l=10, r=10, t=44, b=10), bargap=0.3)
    return figure


def empty_figure(message: str, height: int = 320) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=html.escape(message), showarrow=False, font=dict(size=14, color="#64748b"))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _layout(figure, "", height)


def _hover(point: dict[str, Any]) -> str:
    text = point.get("instruction") or ""
    text = text if len(text) <= 240 else text[:237] + "…"
    lines = "<br>".join(html.escape(line) for line in textwrap.wrap(text, 70)[:5])
    flags = ", ".join(f.replace("_", " ") for f in point.get("flags") or [])
    meta = f"#{point['id']} · {point.get('status')} · {point.get('category') or 'no category'}"
    return f"<b>{html.escape(meta)}</b><br>{lines}" + (f"<br><i>⚑ {html.escape(flags)}</i>" if flags else "")


def cluster_label(cluster: dict[str, Any]) -> str:
    words = ", ".join(cluster["words"][:3]) or "no distinctive words"
    return f"C{cluster['id']} · {words}"


def map_figure(report: dict[str, Any] | None, color_by: str = "Cluster") -> go.Figure:
    """Every live record at its 2-D place, one trace per colour group; a point's customdata is its record id."""
    if not report or not report.get("points"):
        return empty_figure("No map yet: choose a dataset and press “Map and coverage”.", 560)
    key = COLOR_BY.get(color_by, "cluster")
    names = {c["id"]: cluster_label(c) for c in report["clusters"]}

    def group_of(point):
        if key == "cluster":
            return names.get(point["cluster"], f"C{point['cluster']}")
        if key == "flag":
            return (point.get("flags") or ["no flag"])[0].replace("_", " ")
        return point.get(key) or f"(no {key})"

    groups: dict[str, list[dict]] = {}
    for point in report["points"]:
        groups.setdefault(group_of(point), []).append(point)
    scatter = go.Scattergl if len(report["points"]) > WEBGL_FROM else go.Scatter
    figure = go.Figure()
    for i, (name, points) in enumerate(sorted(groups.items(), key=lambda kv: -len(kv[1]))):
        color = STATUS_COLORS.get(name) if key == "status" else None
        figure.add_trace(scatter(
            x=[p["x"] for p in points], y=[p["y"] for p in points], mode="markers", name=html.escape(str(name)),
            customdata=[[p["id"]] for p in points], hovertext=[_hover(p) for p in points], hoverinfo="text",
            marker=dict(size=9 if len(report["points"]) < 2000 else 5, opacity=0.85,
                        color=color or PALETTE[i % len(PALETTE)], line=dict(width=0.5, color="white"))))
    figure.update_xaxes(showticklabels=False, title=None, zeroline=False)
    figure.update_yaxes(showticklabels=False, title=None, zeroline=False)
    # dragmode lasso: a drag draws a lasso whose records Browse can list (curation/ui/diversity_map.py)
    figure.update_layout(legend=dict(title=color_by, itemsizing="constant"), hoverlabel=dict(align="left"),
                         clickmode="event", dragmode="lasso")
    return _layout(figure, f"{len(report['points']):,} records by meaning, coloured by {color_by.lower()}", 600)


def bar_figure(title: str, counts: dict[str, int], *, top: int = 25, colors: dict[str, str] | None = None,
               height: int | None = None) -> go.Figure:
    """Horizontal bars, largest on top; the rest beyond `top` summed into one bar."""
    if not counts:
        return empty_figure(f"{title}: nothing to count yet")
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    if len(items) > top:
        items = items[:top - 1] + [(f"{len(items) - top + 1} others", sum(n for _, n in items[top - 1:]))]
    labels = [html.escape(str(k)) for k, _ in items]
    bar = go.Bar(y=labels, x=[n for _, n in items], orientation="h", text=[n for _, n in items],
                 textposition="auto", marker_color=[(colors or {}).get(k, "#6366f1") for k, _ in items])
    figure = go.Figure(bar)
    figure.update_yaxes(type="category", autorange="reversed")
    figure.update_xaxes(tickformat=",d", dtick=1 if items[0][1] <= 8 else None)
    return _layout(figure, title, height or max(180, 70 + 26 * len(items)))


def coverage_figures(report: dict[str, Any] | None) -> tuple[go.Figure, ...]:
    """(clusters, categories, statuses, authors, leading words)."""
    if not report or not report.get("points"):
        blank = empty_figure("No coverage yet")
        return blank, blank, blank, blank, blank
    counts = report["counts"]
    clusters = {cluster_label(c): c["size"] for c in report["clusters"]}
    return (bar_figure("Records per cluster (named by their most distinctive words)", clusters, top=50),
            bar_figure("Records per category", counts["category"]),
            bar_figure("Records per status", counts["status"], colors=STATUS_COLORS),
            bar_figure("Records per author", counts["author"]),
            bar_figure("Leading word of the instruction (mostly the verb)", counts["leading_word"], top=20))


METHOD_NAMES = {"umap": "UMAP", "pca": "PCA"}


def coverage_summary(report: dict[str, Any] | None) -> str:
    if not report or not report.get("points"):
        return ""
    biggest = max(report["clusters"], key=lambda c: c["size"])
    share = biggest["size"] / max(1, len(report["points"]))
    line = (f"**{len(report['points']):,}** live records in **{len(report['clusters'])}** clusters · the largest, "
            f"*{html.escape(cluster_label(biggest))}*, holds **{share:.0%}** · "
            f"**{len(report['counts']['leading_word']):,}** distinct leading words")
    drawn = report.get("map")
    if drawn:
        line += (f" · laid out by {METHOD_NAMES.get(drawn['method'], drawn['method'])} in {drawn['seconds']:.1f} s "
                 "and kept until the records change")
    return line


def flags_view(report: dict[str, Any] | None) -> tuple[go.Figure, str]:
    """The quality-flag counts as bars, and each flag with its first records (buttons that open them)."""
    if not report:
        return empty_figure("No quality report yet"), ""
    counts = {name.replace("_", " "): n for name, n in report["flags"].items() if n}
    figure = bar_figure(f"Quality flags over {report['records']:,} live records", counts, colors=None)
    if not counts:
        return figure, '<div class="dv-empty">✓ No record is flagged.</div>'
    rows = []
    for name, n in sorted(report["flags"].items(), key=lambda kv: -kv[1]):
        if not n:
            continue
        doc = FLAG_MEANING.get(name, "")
        buttons = " ".join(f'<button type="button" class="dv-open" data-open-record="{int(i)}">#{int(i)}</button>'
                           for i in report["examples"].get(name, []))
        rows.append(f'<tr><td><b>{html.escape(name.replace("_", " "))}</b>'
                    + (f'<div class="dv-quiet">{html.escape(doc)}</div>' if doc else "")
                    + f'</td><td class="dv-num">{n:,}</td><td>{buttons}</td></tr>')
    return figure, ('<table class="dv-table"><tr><th>Flag</th><th>Records</th><th>First ones (click to open)</th></tr>'
                    + "".join(rows) + "</table>")


# ---- duplicate groups ----------------------------------------------------------------------------

KIND_LABELS = {"exact": "exact copy", "semantic": "same meaning", "lexical": "similar wording"}


def groups_frame(groups: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"#": i + 1, "Kind": KIND_LABELS.get(g["kind"], g["kind"]), "Score": round(g["score"], 3),
             "Records": ", ".join(f"#{r['id']}" for r in g["records"]),
             "Instruction (proposed keep)": _first_line(_keeper(g)["instruction"], 90)}
            for i, g in enumerate(groups)]
    return pd.DataFrame(rows, columns=["#", "Kind", "Score", "Records", "Instruction (proposed keep)"])


def _first_line(text: str, width: int) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[:width - 1] + "…"


def _keeper(group: dict[str, Any]) -> dict[str, Any]:
    return next((r for r in group["records"] if r["id"] == group["keep_id"]), group["records"][0])


def diff_html(reference: str, text: str) -> str:
    """`text` word by word against `reference`: its own words marked <ins>, the reference's missing words <del>."""
    a, b = _TOKENS.findall(reference or ""), _TOKENS.findall(text or "")
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape("".join(b[j1:j2])))
            continue
        if op in ("delete", "replace") and "".join(a[i1:i2]).strip():
            parts.append(f"<del>{html.escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            parts.append(f"<ins>{html.escape(''.join(b[j1:j2]))}</ins>")
    return "".join(parts) or '<span class="dv-quiet">(empty)</span>'


def _score_to_keeper(group: dict[str, Any], record_id: int) -> float | None:
    keep = group["keep_id"]
    direct = [s for a, b, s in group.get("pairs", []) if {a, b} == {keep, record_id}]
    if direct:
        return direct[0]
    near = [s for a, b, s in group.get("pairs", []) if record_id in (a, b)]
    return max(near) if near else None


def group_html(group: dict[str, Any] | None, position: str = "") -> str:
    """The group's records side by side, the proposed keep first; each other one marked where it differs."""
    if group is None:
        return '<div class="dv-empty">No duplicate group here. Run a search, or lower the threshold.</div>'
    keeper = _keeper(group)
    ordered = [keeper] + [r for r in group["records"] if r["id"] != keeper["id"]]
    cards = []
    for record in ordered:
        is_keeper = record["id"] == keeper["id"]
        score = None if is_keeper else _score_to_keeper(group, record["id"])
        badge = ('<span class="dv-keep">proposed keep</span>' if is_keeper
                 else f'<span class="dv-sim">{score:.3f}</span>' if score is not None else "")
        head = (f'<div class="dv-card-head">{badge}<b>#{int(record["id"])}</b>'
                f'<span class="badge {html.escape(record["status"])}">{html.escape(record["status"])}</span>'
                f'<span class="dv-quiet">{html.escape(record.get("created_by") or "import")}'
                f'{" · " + html.escape(record["category"]) if record.get("category") else ""}</span>'
                f'<button type="button" class="dv-open" data-open-record="{int(record["id"])}">Open</button></div>')
        fields = []
        for label, key in (("Instruction", "instruction"), ("Input", "input"), ("Output", "output")):
            if not (record.get(key) or keeper.get(key)):
                continue
            body = html.escape(record.get(key) or "") if is_keeper else diff_html(keeper.get(key) or "", record.get(key))
            fields.append(f'<div class="dv-label">{label}</div><div class="dv-text">{body}</div>')
        cards.append(f'<div class="dv-card{" dv-card-keep" if is_keeper else ""}">{head}{"".join(fields)}</div>')
    title = (f'<div class="dv-group-head">{html.escape(position)} · {KIND_LABELS.get(group["kind"], group["kind"])} · '
             f'similarity up to <b>{group["score"]:.3f}</b> · {len(ordered)} records'
             '<span class="dv-legend"><ins>only here</ins> <del>only in the proposed keep</del></span></div>')
    return f'{title}<div class="dv-cards">{"".join(cards)}</div>'


def decisions_frame(decisions: list[dict[str, Any]]) -> pd.DataFrame:
    words = {"keep_one": "keep one", "not_duplicates": "not duplicates", "merge": "merge"}
    rows = [{"ID": d["id"], "Decision": words.get(d["kind"], d["kind"]),
             "Records": ", ".join(f"#{i}" for i in d["record_ids"]),
             "Kept": f"#{d['keep_id']}" if d["keep_id"] else "all",
             "By": d["decided_by"] or "", "When": d["decided_at"][:16].replace("T", " "),
             "State": "undone" if d["undone"] else "in effect"} for d in decisions]
    return pd.DataFrame(rows, columns=["ID", "Decision", "Records", "Kept", "By", "When", "State"])


def undo_choices(decisions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    words = {"keep_one": "keep one", "not_duplicates": "not duplicates", "merge": "merge"}
    return [(f"#{d['id']} · {words.get(d['kind'], d['kind'])} · records "
             f"{', '.join(str(i) for i in d['record_ids'])} · {d['decided_by'] or ''}", str(d["id"]))
            for d in decisions if not d["undone"]]


PAGE_CSS = """
#diversity-groups td, #diversity-groups th, #diversity-decisions td, #diversity-decisions th,
#diversity-groups td *, #diversity-decisions td * { font-family: var(--font) !important; font-size: .88rem; }
.dv-controls { align-items: flex-start; }
"""

TAB_CSS = """
.dv-cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); gap: 10px; padding-bottom: 6px; }
.dv-card { min-width: 0; border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px; background: var(--background-fill-primary); }
.dv-card-keep { border: 2px solid #22c55e; }
.dv-card-head { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 4px; }
.dv-keep { background: #dcfce7; color: #166534; border-radius: 10px; padding: 1px 8px; font-size: .78rem; font-weight: 600; }
.dv-sim { font-family: var(--font-mono); background: #e0e7ff; color: #3730a3; border-radius: 10px; padding: 1px 8px; font-size: .8rem; }
.dv-label { font-size: .74rem; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--body-text-color-subdued); margin-top: 6px; }
.dv-text { white-space: pre-wrap; word-break: break-word; font-size: .9rem; max-height: 260px; overflow-y: auto; }
.dv-text ins, .dv-legend ins { background: #dcfce7; color: #166534; text-decoration: none; border-radius: 3px; }
.dv-text del, .dv-legend del { background: #fee2e2; color: #991b1b; border-radius: 3px; }
.dv-text del + ins { margin-left: 2px; }
.dv-legend { margin-left: 10px; font-size: .8rem; display: inline-flex; gap: 8px; }
.dv-group-head { margin: 2px 0 8px 0; color: var(--body-text-color-subdued); }
.dv-quiet { color: var(--body-text-color-subdued); font-size: .85rem; }
.dv-empty { color: var(--body-text-color-subdued); padding: 24px; text-align: center; border: 1px dashed var(--border-color-primary); border-radius: 8px; }
.dv-open { margin-left: auto; border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 0 8px; cursor: pointer; background: var(--background-fill-secondary); font-size: .8rem; }
.dv-table { width: 100%; border-collapse: collapse; font-size: .88rem; }
.dv-table th, .dv-table td { border: none !important; border-bottom: 1px solid var(--border-color-primary); padding: 5px 6px; text-align: left; vertical-align: top; }
.dv-table .dv-open { margin: 1px 2px; }
.dv-num { font-family: var(--font-mono); }
"""
