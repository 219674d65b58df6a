"""Text is text (issue 16, item 4): user and file values never become markdown, HTML or LaTeX.

`test_markdown_calls_only_interpolate_escaped_values` walks every dashboard module with `ast`
and fails on a call that Streamlit renders as markdown (st.markdown, st.caption, titles, alerts,
widget labels and help texts…) whose text is built from anything other than literals, numbers
formatted with a format spec, and `text.md(...)`. The other tests pin what the helpers do.
"""

from __future__ import annotations

import ast
from pathlib import Path

import plotly.io as pio
import polars as pl
import pytest

from dashboard import text

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"

# Streamlit calls whose text argument(s) are rendered as markdown
MARKDOWN_SINKS = {
    "markdown",
    "caption",
    "write",
    "title",
    "header",
    "subheader",
    "error",
    "warning",
    "info",
    "success",
    "toast",
    "metric",
    "button",
    "link_button",
    "download_button",
    "form_submit_button",
    "page_link",
    "expander",
    "popover",
    "tabs",
    "dialog",
    "text_input",
    "text_area",
    "number_input",
    "date_input",
    "selectbox",
    "multiselect",
    "segmented_control",
    "radio",
    "checkbox",
    "toggle",
    "file_uploader",
    "table",  # st.table renders its cells as markdown
}
TEXT_KEYWORDS = {"body", "label", "help", "title", "placeholder"}
ESCAPERS = {"md", "md_cells"}


def _is_escaper(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ESCAPERS


def safe(node: ast.expr) -> bool:
    """Built only from literals, numbers with a format spec and escaped values."""
    if isinstance(node, ast.Constant):
        return True
    if _is_escaper(node):
        return True
    root = node
    while (  # md_cells(frame).to_pandas().set_index(...): a method chain on an escaped value
        isinstance(root, ast.Call)
        and isinstance(root.func, ast.Attribute)
        and isinstance(root.func.value, ast.Call)
    ):
        root = root.func.value
        if _is_escaper(root):
            return True
    if isinstance(node, ast.JoinedStr):
        return all(safe(part) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        # `{x:.1f}` only formats numbers (a format spec on text raises); `{x!r}` is text
        return (node.format_spec is not None and node.conversion == -1) or safe(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return safe(node.left) and safe(node.right)
    if isinstance(node, ast.IfExp):
        return safe(node.body) and safe(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(safe(e) for e in node.elts)
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        return safe(node.elt)
    if (  # "sep".join(safe parts) and "literal {}".format(safe args)
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Constant)
        and node.func.attr in {"join", "format"}
    ):
        return all(safe(a) for a in node.args) and all(safe(k.value) for k in node.keywords)
    return False


def _sink(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in MARKDOWN_SINKS:
        return func.attr
    return None


def unescaped_calls(source: str, file_name: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        sink = _sink(node)
        if sink is None:
            continue
        checked = list(node.args[:1])
        if sink == "metric":
            checked = list(node.args[:2])
        checked += [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
        for arg in checked:
            if sink in {"number_input", "date_input", "toggle", "checkbox"} and arg is not (
                node.args[0] if node.args else None
            ):
                continue  # their `value` is a number, date or bool, not text
            if not safe(arg):
                problems.append(f"{file_name}:{node.lineno} {sink}({ast.unparse(arg)[:70]})")
    return problems


def dashboard_modules() -> list[Path]:
    return sorted(p for p in DASHBOARD.rglob("*.py") if p.name != "text.py")


def test_markdown_calls_only_interpolate_escaped_values() -> None:
    problems = []
    for path in dashboard_modules():
        problems += unescaped_calls(path.read_text(), str(path.relative_to(DASHBOARD.parent)))
    assert not problems, "unescaped text in markdown calls:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("st.markdown(f\"**{row['note']}**\")", True),
        ('st.warning(f"No patient {requested!r}")', True),
        ("st.success(done)", True),
        ('st.caption("a" + name)', True),
        ('st.caption(", ".join(names))', True),
        ('st.tabs([f"New {kind}"])', True),
        ('st.metric("x", 1, help=f"{who} said")', True),
        ("st.markdown(f\"**{text.md(row['note'])}**\")", False),
        ('st.caption(f"{fu / 30.4375:.1f} months")', False),
        ('st.caption(" · ".join(f"{md(k)} {md(v)}" for k, v in x))', False),
        ('st.markdown("**Preview**")', False),
        ('st.table(risk.to_pandas().set_index("Number at risk"))', True),
        ('st.table(md_cells(risk).to_pandas().set_index("Number at risk"))', False),
        ("st.dataframe(frame)", False),
    ],
)
def test_the_walker_flags_what_it_should(source: str, flagged: bool) -> None:
    assert bool(unescaped_calls(source, "x.py")) is flagged


PAYLOADS = {
    "image": "![x](http://127.0.0.1:9/x.png)",
    "link": "[link](http://127.0.0.1:9/l)",
    "autolink": "see http://127.0.0.1:9/a or www.example.org or a@example.org",
    "badge": ":red-badge[BADGE] :material/home: :smile:",
    "latex": "$\\frac{1}{2}$ and $$x$$",
    "html": '<img src="http://127.0.0.1:9/h.png"><a href="x">y</a>',
    "structure": "# title\n- item\n> quote\n```\ncode",
}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_md_leaves_no_markdown_syntax(kind: str) -> None:
    escaped = text.md(PAYLOADS[kind])
    # every punctuation character is escaped, so nothing can open a construct
    unescaped = [
        c
        for i, c in enumerate(escaped)
        if not c.isalnum() and c.isascii() and c != " " and c != "\\" and escaped[i - 1] != "\\"
    ]
    assert unescaped == []
    assert "\n" not in escaped
    assert (
        "http:" not in escaped
        and "www" not in escaped
        and "\\@" not in escaped.replace("\u2060\\@", "")
    )
    # removing the escapes and the word joiners gives back the text (newlines as spaces)
    assert text.shown(escaped) == PAYLOADS[kind].replace("\n", " ")


def test_md_of_plain_values() -> None:
    assert text.md(None) == ""
    assert text.md(12) == "12"
    assert text.md("CART-00001") == "CART\\-00001"


def test_plot_escapes_html() -> None:
    assert text.plot('<b>x</b> & <a href="y">') == '&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href="y"&gt;'
    assert text.plot(None) == ""
    assert text.plot("100%{x}") == "100&#37;{x}"


def test_chart_labels_from_user_text_render_as_text() -> None:
    """A group (site or product) named like HTML shows as that text in legend and hover."""
    from dashboard import charts
    from monitoring import survival

    payload = '<img src="http://127.0.0.1:9/p.png"><a href="http://127.0.0.1:9/">a</a>'
    table = pl.concat(
        [
            survival.km_table([10, 20], [1, 0]).with_columns(group=pl.lit(payload)),
            survival.km_table([30, 40], [1, 1]).with_columns(group=pl.lit("plain")),
        ]
    )
    from monitoring.durability_results import DurabilitySummary

    summary = DurabilitySummary("os", None, None, ())
    fig = charts.km_figure(table, summary, y_title="y", stamp=f"filters: site: {payload}")
    dumped = pio.to_json(fig)
    assert "<img" not in dumped and "<a " not in dumped
    assert "&lt;img" in dumped


def test_md_cells_escapes_text_cells_only() -> None:
    frame = pl.DataFrame({"group": ["![x](http://h/x)", "plain"], "n": [1, 2]})
    escaped = text.md_cells(frame)
    assert escaped["n"].to_list() == [1, 2]
    assert [text.shown(v) for v in escaped["group"].to_list()] == frame["group"].to_list()
    assert escaped["group"][0].startswith("\\!\\[x\\]")
