"""``report.html``: the run report as one self-contained file for sharing.

The HTML is rendered from ``report.md`` (which ``neurosim.report.markdown`` writes), so the two
say the same thing; every plot it links (``![name](plots/x.png)``) is embedded as a base64 PNG,
so the file needs nothing beside it. The converter covers the Markdown the report uses:
headings, paragraphs, ``- `` lists, pipe tables (``---:`` right-aligns a column), images, and
inline ``**bold**``, ``*italic*`` and ```code```. Output is deterministic (same report.md and
PNGs, same bytes). A linked image that is missing is an error naming it, never dropped.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

HTML_NAME = "report.html"
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_HEADING = re.compile(r"^(#{1,6}) (.*)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 90%; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f4f4f4; }
tr:nth-child(even) td { background: #fafafa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 .25em; border-radius: 3px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 85%; color: #666; }
""".strip()


def inline(text: str) -> str:
    """Markdown inline markup -> HTML (text escaped; code spans kept verbatim)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for p in parts:
        if len(p) >= 2 and p.startswith("`") and p.endswith("`"):
            out.append(f"<code>{html.escape(p[1:-1])}</code>")
            continue
        s = html.escape(p.replace("\\|", "|"), quote=False)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)([^*]+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip() for c in _CELL_SPLIT.split(body)]


def _table(lines: list[str]) -> str:
    head, rule, rows = _cells(lines[0]), _cells(lines[1]), [_cells(ln) for ln in lines[2:]]
    right = [c.endswith(":") and not c.startswith(":") for c in rule]

    def row(cells, tag):
        attrs = [' class="num"' if i < len(right) and right[i] else "" for i in range(len(cells))]
        return "<tr>" + "".join(f"<{tag}{a}>{inline(c)}</{tag}>"
                                for a, c in zip(attrs, cells)) + "</tr>"
    return ("<table>\n<thead>" + row(head, "th") + "</thead>\n<tbody>\n"
            + "\n".join(row(r, "td") for r in rows) + "\n</tbody>\n</table>")


def _image(alt: str, src: str, base: Path) -> str:
    path = base / src
    if not path.is_file():
        raise FileNotFoundError(f"{base / 'report.md'} links {src}, which does not exist")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = "image/png" if path.suffix.lower() == ".png" else f"image/{path.suffix[1:].lower()}"
    return (f'<figure><img src="data:{mime};base64,{data}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(src)}</figcaption></figure>")


def _single(s: str) -> bool:
    return bool(_HEADING.match(s) or _IMAGE.match(s))


def _blocks(md: str) -> list[list[str]]:
    """Lines grouped into blocks: a heading, an image, a table, a list or a paragraph (blank
    lines separate blocks; a heading, an image, a table or a list also starts one)."""
    blocks: list[list[str]] = []
    cur: list[str] = []
    for ln in md.splitlines():
        s = ln.strip()
        if cur and (not s or _single(s) or s.startswith("|") != cur[0].strip().startswith("|")
                    or (s.startswith("- ") and not cur[0].strip().startswith("- "))):
            blocks.append(cur)
            cur = []
        if s:
            cur.append(ln)
        if s and _single(s):
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def markdown_to_html(md: str, base: Path) -> str:
    """The report's Markdown as a complete HTML document (images from ``base`` embedded)."""
    body, title = [], "neurosim report"
    for b in _blocks(md):
        first = b[0].strip()
        if m := _HEADING.match(first):
            level = len(m.group(1))
            if level == 1:
                title = m.group(2)
            body.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif m := _IMAGE.match(first):
            body.append(_image(m.group(1), m.group(2), base))
        elif first.startswith("|"):
            body.append(_table(b))
        elif first.startswith("- "):
            items, cur = [], []
            for ln in b:
                if ln.startswith("- ") and cur:
                    items.append(" ".join(cur))
                    cur = []
                cur.append(ln[2:] if ln.startswith("- ") else ln.strip())
            items.append(" ".join(cur))
            body.append("<ul>\n" + "\n".join(f"<li>{inline(i)}</li>" for i in items) + "\n</ul>")
        else:
            body.append(f"<p>{inline(' '.join(ln.strip() for ln in b))}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_html(run_dir, md_text: str | None = None) -> Path:
    """Write ``run_dir/report.html`` from ``md_text`` (default: ``run_dir/report.md``)."""
    out = Path(run_dir)
    md = (out / "report.md").read_text() if md_text is None else md_text
    path = out / HTML_NAME
    path.write_text(markdown_to_html(md, out))
    return path


__all__ = ["HTML_NAME", "markdown_to_html", "write_html", "inline"]
