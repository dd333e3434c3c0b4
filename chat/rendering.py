"""Model output (markdown) to sanitized HTML, made once when a reply is saved, and while it
streams (``LiveMarkdown``) by the very same path.

The stored HTML is shown with ``|safe``, so this module is a security boundary. Three layers:

1. markdown-it (commonmark + tables + strikethrough) runs with ``html=False``: raw HTML that the
   model writes is escaped as text, never parsed. Links must be absolute http(s) or mailto
   (``validateLink``); anything else stays literal text. Images are rendered as a link to their
   URL, so nothing from model output is ever loaded by the browser.
2. nh3 sanitizes the whole render against an explicit allow-list of tags and attributes (no
   ``style``, no event handlers, no ``hx-*`` or ``data-*``, only http/https/mailto URLs, no
   relative URLs) and adds ``rel`` and ``target`` to every link.
3. Code blocks are the one place where our own markup needs what the allow-list refuses (the copy
   button and its ``data-copy-code``, and ``tabindex`` so the scrolling ``<pre>`` takes focus).
   Rather than widen the allow-list for everyone, the code block rule puts a placeholder
   carrying a per-render random nonce into the document; after the document is sanitized each
   placeholder is replaced by our wrapper around the code. The code itself is escaped by
   Pygments (or ``html.escape``) and then sanitized again with a cleaner that keeps nothing but
   ``<span>`` with Pygments' own class names. So what the model wrote always passes a
   sanitizer, and only the wrapper, written here, is trusted. The model cannot forge a
   placeholder: the nonce is drawn after its text exists.
4. While a reply streams, the only markup added after sanitizing is ``LiveMarkdown``'s own empty
   span (an id made from the message's number and the part: its text or its thinking) before
   the closing tags at the end of the block still growing; the text that fills it until the
   next render is escaped.
"""

import re
import secrets
from collections.abc import Sequence
from functools import lru_cache
from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# Highlighting is regex work in Pygments; past this size a block is shown plain so that one
# enormous reply cannot hold a worker for long.
MAX_HIGHLIGHT_CHARS = 100_000

_SAFE_LINK = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
_LANGUAGE = re.compile(r"[\w+#.-]{1,40}", re.ASCII)
_PLACEHOLDER = re.compile(r"\[code-block ([0-9a-f]{32}) (\d+)\]")
_TABLE_ALIGN_CLASSES = {
    "text-align:left": "align-left",
    "text-align:center": "align-center",
    "text-align:right": "align-right",
}
# C0 controls other than tab, newline and carriage return: PostgreSQL refuses NUL in text, and
# the rest have no business in a chat message.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")

_BLOCK_TAGS = {"blockquote", "div", "hr", "li", "ol", "p", "pre", "ul"}
_HEADING_TAGS = {f"h{level}" for level in range(1, 7)}
_INLINE_TAGS = {"a", "br", "code", "em", "s", "strong"}
_TABLE_TAGS = {"table", "tbody", "td", "th", "thead", "tr"}
_document_cleaner = nh3.Cleaner(
    tags=_BLOCK_TAGS | _HEADING_TAGS | _INLINE_TAGS | _TABLE_TAGS,
    clean_content_tags={"script", "style", "template", "iframe", "object", "svg", "math"},
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    allowed_classes={
        "div": {"table-wrap"},
        "th": set(_TABLE_ALIGN_CLASSES.values()),
        "td": set(_TABLE_ALIGN_CLASSES.values()),
    },
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)
_code_cleaner = nh3.Cleaner(
    tags={"span"},
    attributes={},
    allowed_classes={"span": {name for name in STANDARD_TYPES.values() if name}},
    strip_comments=True,
)
_formatter = HtmlFormatter(nowrap=True)


class _ChatMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        return _SAFE_LINK.match(url.strip()) is not None


def _language_of(info: str) -> str:
    words = unescapeAll(info).split(maxsplit=1)
    if words and _LANGUAGE.fullmatch(words[0]):
        return words[0]
    return ""


@lru_cache(maxsize=128)
def _lexer_for(language: str) -> Lexer | None:
    try:
        # stripnl=False keeps the block exactly as written, which is what Copy should copy.
        return get_lexer_by_name(language.lower(), stripnl=False)
    except ClassNotFound:
        return None


def _code_block_html(code: str, language: str, *, still_open: bool = False) -> str:
    lexer = _lexer_for(language) if language and not still_open else None
    if lexer is None or len(code) > MAX_HIGHLIGHT_CHARS:
        body = escape(code, quote=False)
    else:
        body = _code_cleaner.clean(highlight(code, lexer, _formatter))
    code_class = f' class="language-{escape(language)}"' if language else ""
    return (
        '<div class="code-block"><div class="code-header">'
        f'<span class="code-lang">{escape(language or "text")}</span>'
        '<button type="button" class="copy-button" data-copy-code aria-label="Copy code">'
        "Copy</button></div>"
        # A long line scrolls sideways: tabindex lets a keyboard reach the block to scroll it.
        f'<pre tabindex="0"><code{code_class}>{body}</code></pre></div>'
    )


def _render_code_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    code_blocks: list[str] = env["code_blocks"]
    code_blocks.append(
        _code_block_html(
            token.content, _language_of(token.info), still_open=bool(token.meta.get("open"))
        )
    )
    return f"[code-block {env['nonce']} {len(code_blocks) - 1}]\n"


def _render_image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = escape(self.renderInlineAsText(token.children or [], options, env))
    if not src.lower().startswith(("http://", "https://")):
        return f"[image: {alt}]"
    return f'[image: <a href="{escape(src)}">{alt or escape(src)}</a>]'


def _render_table_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return '<div class="table-wrap">\n' + self.renderToken(tokens, idx, options, env)


def _render_table_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


def _render_table_cell_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # markdown-it aligns columns with inline styles, which the CSP refuses: use classes instead.
    token = tokens[idx]
    if align_class := _TABLE_ALIGN_CLASSES.get(str(token.attrs.pop("style", ""))):
        token.attrSet("class", align_class)
    return self.renderToken(tokens, idx, options, env)


def _build_markdown() -> MarkdownIt:
    markdown = _ChatMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False})
    markdown.enable(["table", "strikethrough"])
    markdown.add_render_rule("fence", _render_code_block)
    markdown.add_render_rule("code_block", _render_code_block)
    markdown.add_render_rule("image", _render_image)
    markdown.add_render_rule("table_open", _render_table_open)
    markdown.add_render_rule("table_close", _render_table_close)
    markdown.add_render_rule("th_open", _render_table_cell_open)
    markdown.add_render_rule("td_open", _render_table_cell_open)
    return markdown


_markdown = _build_markdown()


def clean_model_text(text: str) -> str:
    """Make text storable in PostgreSQL and encodable as UTF-8, changing nothing else.

    Drops NUL and the other C0 controls except tab, newline and carriage return. A surrogate pair
    that arrived as two code points (JSON ``"\\ud83d\\ude00"`` decoded in pieces) is joined back
    into its character; a lone surrogate is dropped.
    """
    if _SURROGATES.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    return _CONTROL_CHARACTERS.sub("", text)


def _new_env() -> dict[str, Any]:
    return {"nonce": secrets.token_hex(16), "code_blocks": []}


def _sanitized(tokens: Sequence[Token], env: dict[str, Any]) -> str:
    """Tokens to HTML through the one allow-list, our code block wrappers put back after it."""
    document = _document_cleaner.clean(_markdown.renderer.render(tokens, _markdown.options, env))
    code_blocks: list[str] = env["code_blocks"]
    if not code_blocks:
        return document
    nonce = env["nonce"]

    def restore_code_block(match: re.Match[str]) -> str:
        if match[1] != nonce:
            return match[0]
        return code_blocks[int(match[2])]

    return _PLACEHOLDER.sub(restore_code_block, document)


def render_markdown(text: str) -> str:
    """Render a finished reply to sanitized HTML, safe to store and show with ``|safe``."""
    env = _new_env()
    return _sanitized(_markdown.parse(clean_model_text(text), env), env)


_CLOSING_TAGS_AT_END = re.compile(r"(?:</[a-z0-9]+>\s*)*\Z")
_LINE_ENDINGS = re.compile(r"\r\n?")


def _fence_is_closed(token: Token, lines: list[str]) -> bool:
    """Whether a fenced block's closing fence has arrived (markdown-it runs an unclosed fence
    to the end of the text; a closed one's last line is its fence)."""
    if token.map is None or token.map[1] - 1 <= token.map[0]:
        return False
    last = lines[token.map[1] - 1].lstrip(" \t>")
    fence = token.markup
    return last.startswith(fence) and not last.strip(fence[0] + " \t")


def stream_id(message_id: int, part: str = "") -> str:
    """The prefix of the ids a reply's streamed part carries on the page: ``message-7`` for its
    text, ``message-7-thinking`` for its reasoning summary."""
    return f"message-{message_id}-{part}" if part else f"message-{message_id}"


# Blocks whose render keeps their text exactly, trailing whitespace included.
_VERBATIM_BLOCKS = frozenset({"fence", "code_block", "html_block"})


class LiveMarkdown:
    """A reply's markdown, rendered while it streams by the same renderer and allow-list as
    ``render_markdown``, so that the final render replaces it without a visible change.

    Finished blocks are rendered once: a top-level block is finished when the next one begins,
    and from then on only the text after it is parsed. The block still growing is parsed again,
    but not at every delta: its parse costs in proportion to its length, so it is rendered
    again once the text that arrived since its last render is ``RERENDER_SHARE`` of it; what
    arrives meanwhile is escaped text appended at the end of the block (the "more" span). The
    cost per delta so stays flat however long the reply or its growing block. An open code
    fence is shown plain; it is highlighted when its closing fence arrives.
    """

    RERENDER_SHARE = 0.5

    def __init__(self, message_id: int, *, part: str = "") -> None:
        self.more_id = f"{stream_id(message_id, part)}-more"
        self._done: list[str] = []
        self._tail = ""
        self._tail_html = ""
        self._rendered_chars = 0
        self._unrendered: list[str] = []
        self._unrendered_chars = 0
        self._gap = ""

    def add(self, text: str) -> tuple[str, str] | str:
        """Take cleaned text. Returns ``(finished blocks, growing block)`` as HTML when the
        growing block was rendered again, else the text to append to it (not yet escaped)."""
        self._tail += text
        self._unrendered.append(text)
        self._unrendered_chars += len(text)
        if self._unrendered_chars < self.RERENDER_SHARE * self._rendered_chars:
            return text
        return self._render()

    def _render(self) -> tuple[str, str]:
        # A carriage return may be the first half of "\r\n": it waits for the next text.
        held = "\r" if self._tail.endswith("\r") else ""
        source = _LINE_ENDINGS.sub("\n", self._tail[: len(self._tail) - len(held)])
        env = _new_env()
        tokens = _markdown.parse(source, env)
        lines = source.split("\n")
        for token in tokens:
            if token.type == "fence" and not _fence_is_closed(token, lines):
                token.meta["open"] = True
        starts = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
        finished = ""
        if len(starts) > 1:
            split = starts[-1]
            first_line = tokens[split].map[0]  # type: ignore[index]
            finished = _sanitized(tokens[:split], env)
            self._done.append(finished)
            source = "\n".join(lines[first_line:])
            tokens = tokens[split:]
        self._tail = source + held
        self._tail_html = _sanitized(tokens, env)
        # A paragraph's render drops the whitespace it ends with; the text that runs on after
        # it (until the next render) must not stick to its last word.
        verbatim = bool(tokens) and tokens[-1].type in _VERBATIM_BLOCKS
        self._gap = " " if source[-1:].isspace() and not verbatim else ""
        self._rendered_chars = len(source)
        self._unrendered.clear()
        self._unrendered_chars = 0
        return finished, self._with_more(self._tail_html)

    def _with_more(self, html: str, text: str = "") -> str:
        """The growing block with the span that takes the text arriving before its next render:
        inside its innermost last element, so the text runs on where the block ends."""
        span = f'<span id="{self.more_id}" class="stream-more">{self._gap}{text}</span>'
        end = _CLOSING_TAGS_AT_END.search(html)
        at = end.start() if end is not None else len(html)
        return html[:at] + span + html[at:]

    def snapshot(self) -> tuple[str, str]:
        """Everything so far, finished blocks and growing block, for a tab that starts
        watching mid-reply."""
        unrendered = escape("".join(self._unrendered), quote=False)
        return "".join(self._done), self._with_more(self._tail_html, unrendered)
