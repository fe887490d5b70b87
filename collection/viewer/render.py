"""Transcript text as safe HTML.

Everything here starts from untrusted text. Markdown goes through markdown-it-py with raw
HTML off and then through nh3; code goes through pygments, which escapes it. Only those two
outputs are marked safe; everything else is left to the template's autoescaping.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name, get_lexer_for_filename
from pygments.util import ClassNotFound

PREVIEW_LINES = 8
PREVIEW_CHARS = 700
# Past this many characters, code is shown plain: highlighting is not worth seconds.
HIGHLIGHT_CHARS = 200_000

_ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "span": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "div": {"class"},
}
_CLEANER = nh3.Cleaner(
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)
_FORMATTER = HtmlFormatter(nowrap=True)


def _fence(code: str, language: str, _attrs: str) -> str:
    lexer = _lexer(language=language.strip().split(" ")[0]) if language else TextLexer()
    return f'<pre class="hl"><code>{_highlight_raw(code, lexer)}</code></pre>'


_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False, "highlight": _fence})
    .enable("table")
    .enable("strikethrough")
)


def markdown_html(text: str) -> SafeString:
    """Markdown as sanitised HTML: raw HTML in the text stays text, nh3 has the last word."""
    return mark_safe(_CLEANER.clean(_MARKDOWN.render(text)))  # noqa: S308 - nh3 output


def highlight(code: str, *, filename: str = "", language: str = "") -> SafeString:
    """Code as highlighted HTML lines (pygments escapes it; classes, no inline styles)."""
    return mark_safe(_highlight_raw(code, _lexer(filename, language)))  # noqa: S308 - pygments


def _highlight_raw(code: str, lexer: Lexer) -> str:
    if len(code) > HIGHLIGHT_CHARS:
        lexer = TextLexer()
    return pygments_highlight(code, lexer, _FORMATTER)


@lru_cache(maxsize=128)
def _lexer(filename: str = "", language: str = "") -> Lexer:
    try:
        if language:
            return get_lexer_by_name(language)
        if filename:
            return get_lexer_for_filename(filename.rsplit("/", 1)[-1])
    except ClassNotFound:
        pass
    return TextLexer()


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "ctx", "del" or "add"
    html: SafeString


def diff_lines(old: str, new: str, filename: str) -> list[DiffLine]:
    """An edit as a line diff, each side highlighted as the file's language."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    old_html, new_html = _highlighted_lines(old, filename), _highlighted_lines(new, filename)
    rows: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [DiffLine("ctx", old_html[i]) for i in range(i1, i2)]
            continue
        rows += [DiffLine("del", old_html[i]) for i in range(i1, i2)]
        rows += [DiffLine("add", new_html[j]) for j in range(j1, j2)]
    return rows


def _highlighted_lines(code: str, filename: str) -> list[SafeString]:
    # pygments closes its spans at every line end, so its output splits into whole lines.
    html = _highlight_raw(code, _lexer(filename))
    return [mark_safe(line) for line in html.split("\n")]  # noqa: S308 - pygments output


def result_text(result: Any) -> str:
    """A tool result as text: a string as is, content blocks joined, anything else as JSON."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    if isinstance(result, list):
        return "\n".join(_block_text(block) for block in result)
    return json.dumps(result, indent=2, ensure_ascii=False)


def _block_text(block: Any) -> str:
    if isinstance(block, dict):
        if block.get("type") == "text":
            return str(block.get("text", ""))
        if block.get("type") == "image":
            return "[image]"
    return json.dumps(block, ensure_ascii=False)


@dataclass(frozen=True)
class Preview:
    text: str
    cut: bool  # whether `text` leaves something out
    lines: int
    size: int  # characters


def preview(text: str, *, lines: int = PREVIEW_LINES, chars: int = PREVIEW_CHARS) -> Preview:
    """The start of a long text, cut at a line end, without splitting the whole text."""
    head = text[:chars]
    cut_at = _nth_newline(head, lines)
    if cut_at is not None:
        head = head[:cut_at]
    return Preview(head, len(head) < len(text), text.count("\n") + 1 if text else 0, len(text))


def _nth_newline(text: str, n: int) -> int | None:
    index = -1
    for _ in range(n):
        index = text.find("\n", index + 1)
        if index < 0:
            return None
    return index
