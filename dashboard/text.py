"""Text is text: the one way a value that came from a user or a file reaches the screen.

Streamlit interprets the strings given to `st.markdown`, `st.caption`, `st.write`, titles,
alerts (`st.error`, `st.warning`…), widget labels and help texts as GitHub markdown with its own
extensions: images and links, `:red-badge[…]` / `:material/…:` directives, `$…$` LaTeX, and (GFM)
bare `http://…`, `www.…` and `name@host` autolinks. A site name, product, comment, note, user
name or `?patient=` value put there unescaped can make the page fetch an image from another
port of the same host (cookies ignore ports) or show a link that is not what it says.

`md(value)` makes any value safe inside those strings: every ASCII punctuation character gets a
backslash (CommonMark lets any of them be escaped, and the escape turns directives and LaTeX
delimiters into plain characters), and an invisible word joiner (U+2060) goes inside the
prefixes GFM turns into links, which escaping alone does not stop. Newlines become spaces, so a
value cannot start a block. `plot(value)` does the same for plotly, which renders a subset of
HTML (`<a>`, `<b>`, `<br>`…, and entities) in trace names, hover texts, titles and annotations.

Cells of `st.dataframe`, `st.text` and `st.code` are not interpreted and need neither; cells of
`st.table` are markdown (`md_cells`). `tests/test_text_is_text.py` walks the views and fails on a markdown call whose text is
built from anything but literals and `md(...)`.
"""

from __future__ import annotations

import html
import re

import polars as pl

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_AUTOLINK_PREFIX = re.compile(r"(?i)(?<=w)(?=ww)|(?<=h)(?=ttp)|(?<=f)(?=tp)|(?<=m)(?=ailto)")
_WORD_JOINER = "\u2060"
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_NEWLINES = re.compile(r"[\r\n\u2028\u2029\x0b\x0c]+")


def md(value: object) -> str:
    """`value` as literal text inside a Streamlit markdown string (None shows as an empty string)."""
    text = "" if value is None else str(value)
    text = _NEWLINES.sub(" ", text)
    text = _AUTOLINK_PREFIX.sub(_WORD_JOINER, text)
    text = text.replace("@", _WORD_JOINER + "@")
    return _PUNCTUATION.sub(r"\\\1", text)


def md_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell escaped with `md`, for `st.table` (which renders its cells as markdown)."""
    return frame.with_columns(
        pl.col(c).map_elements(md, return_dtype=pl.String)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )


def shown(markdown: str) -> str:
    """What a reader sees of a string built with `md` (escapes and word joiners removed); for
    tests that read Streamlit's element values."""
    return _ESCAPED.sub(r"\1", markdown).replace(_WORD_JOINER, "")


def plot(value: object) -> str:
    """`value` as literal text in a plotly label, legend, hover text, title or annotation.

    `%` becomes a numeric entity too: inside a hover template `%{...}` would be filled in."""
    escaped = html.escape("" if value is None else str(value), quote=False)
    return escaped.replace("%", "&#37;")
