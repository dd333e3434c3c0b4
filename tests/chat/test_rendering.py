from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from chat import rendering
from chat.fragments import stream_append
from chat.rendering import clean_model_text, render_markdown

ALLOWED_TAGS = {
    "a", "blockquote", "br", "button", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead",
    "tr", "ul",
}  # fmt: skip
LINK_REL = "noopener noreferrer nofollow"
# Raw HTML a model might write; it must show as text wherever it is rendered.
HOSTILE_HTML = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="https://example.com" hx-get="/admin/">x</a>',
    '<div hx-trigger="load" hx-get="/x">x</div>',
    "<style>body { display: none }</style>",
    '<iframe src="https://evil.example/"></iframe>',
    "<svg onload=alert(1)><circle /></svg>",
    '<a href="javascript:alert(1)">x</a>',
    "<details open ontoggle=alert(1)>",
    '<form action="/admin/"><button formaction="/x">go</button></form>',
    "<!-- comment --><p>text</p>",
]
COPY_BUTTON = {
    "type": "button",
    "class": "copy-button",
    "data-copy-code": None,
    "aria-label": "Copy code",
}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: "Element | None") -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Element] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def ancestors(self) -> list[str]:
        tags = []
        node = self.parent
        while node is not None and node.tag != "#root":
            tags.append(node.tag)
            node = node.parent
        return tags


class TreeBuilder(HTMLParser):
    VOID = {"br", "hr", "img", "input", "meta", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.current = self.root
        self.elements: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        self.elements.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        self.elements.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        self.current = self.current.parent or self.root

    def handle_data(self, data: str) -> None:
        node: Element | None = self.current
        while node is not None:
            node.text_parts.append(data)
            node = node.parent


def parse(html: str) -> TreeBuilder:
    tree = TreeBuilder()
    tree.feed(html)
    tree.close()
    assert tree.current is tree.root, "unclosed element"
    return tree


def find_all(tree: TreeBuilder, tag: str) -> list[Element]:
    return [element for element in tree.elements if element.tag == tag]


def assert_inert(html: str) -> TreeBuilder:
    """Every tag allowed, no attribute that runs, loads or re-targets anything."""
    lowered = html.lower()
    for opening in ("<script", "<img", "<iframe", "<style", "<svg", "<object", "<embed", "<form"):
        assert opening not in lowered
    tree = parse(html)
    for element in tree.elements:
        assert element.tag in ALLOWED_TAGS
        for name, value in element.attrs.items():
            assert not name.startswith("on"), name
            assert not name.startswith("hx-"), name
            assert name not in {"style", "src", "srcdoc", "formaction", "action", "id"}, name
            if name.startswith("data-"):
                assert (element.tag, name) == ("button", "data-copy-code")
            assert "javascript:" not in (value or "").lower()
        if element.tag == "button":
            assert element.attrs == COPY_BUTTON
        if element.tag == "a":
            href = element.attrs.get("href")
            if href is not None:
                assert urlsplit(href).scheme in {"http", "https", "mailto"}, href
            assert element.attrs.get("rel") == LINK_REL
            assert element.attrs.get("target") == "_blank"
    return tree


def test_headings_lists_and_emphasis_render() -> None:
    html = render_markdown("# Title\n\n## Part\n\n- one\n- **two**\n\n1. *first*\n2. ~~gone~~\n")

    tree = assert_inert(html)
    assert [element.text for element in find_all(tree, "h1")] == ["Title"]
    assert [element.text for element in find_all(tree, "h2")] == ["Part"]
    assert [element.text for element in find_all(tree, "li")] == ["one", "two", "first", "gone"]
    assert find_all(tree, "strong")[0].text == "two"
    assert find_all(tree, "em")[0].text == "first"
    assert find_all(tree, "s")[0].text == "gone"


def test_ordered_list_keeps_its_start_number() -> None:
    tree = assert_inert(render_markdown("3. three\n4. four\n"))

    assert find_all(tree, "ol")[0].attrs == {"start": "3"}


def test_table_renders_in_a_scroll_wrapper_with_alignment_classes() -> None:
    html = render_markdown("| left | mid | right |\n|:--|:-:|--:|\n| a | b | c |\n")

    tree = assert_inert(html)
    (table,) = find_all(tree, "table")
    assert table.parent is not None
    assert table.parent.tag == "div"
    assert table.parent.attrs == {"class": "table-wrap"}
    assert [cell.attrs.get("class") for cell in find_all(tree, "th")] == [
        "align-left",
        "align-center",
        "align-right",
    ]
    assert [cell.text for cell in find_all(tree, "td")] == ["a", "b", "c"]


def test_fenced_code_is_highlighted_inside_the_code_block_wrapper() -> None:
    code = 'def greet(name):\n    return f"<b>{name}</b>"  # hi\n'

    html = render_markdown(f"Look:\n\n```python\n{code}```\n")

    tree = assert_inert(html)
    (block,) = [div for div in find_all(tree, "div") if div.attrs.get("class") == "code-block"]
    header, pre = block.children
    assert header.tag == "div"
    assert header.attrs == {"class": "code-header"}
    label, button = header.children
    assert (label.tag, label.attrs, label.text) == ("span", {"class": "code-lang"}, "python")
    assert (button.tag, button.attrs, button.text) == ("button", COPY_BUTTON, "Copy")
    assert pre.tag == "pre"
    assert pre.attrs == {"tabindex": "0"}, "a keyboard can reach the block to scroll it"
    (code_element,) = pre.children
    assert code_element.tag == "code"
    assert code_element.attrs == {"class": "language-python"}
    assert code_element.text == code
    highlighted = {span.attrs.get("class") for span in code_element.children}
    assert {"k", "nf", "c1"} <= highlighted
    assert "[code-block" not in html


def test_highlighted_code_keeps_blank_lines_at_its_ends() -> None:
    code = "\n\nprint(1)\n\n\n"

    tree = assert_inert(render_markdown(f"```python\n{code}```\n"))

    (code_element,) = find_all(tree, "code")
    assert code_element.text == code


def test_unknown_language_is_plain_escaped_code() -> None:
    html = render_markdown("```nosuchlanguage\n<script>alert(1)</script>\n```\n")

    tree = assert_inert(html)
    (label,) = [span for span in find_all(tree, "span") if span.attrs == {"class": "code-lang"}]
    assert label.text == "nosuchlanguage"
    (code,) = find_all(tree, "code")
    assert code.attrs == {"class": "language-nosuchlanguage"}
    assert code.children == []
    assert code.text == "<script>alert(1)</script>\n"


def test_code_without_language_is_labelled_text() -> None:
    for source in ("```\nplain\n```\n", "    plain\n"):
        tree = assert_inert(render_markdown(source))

        (label,) = [span for span in find_all(tree, "span") if span.attrs == {"class": "code-lang"}]
        assert label.text == "text"
        (code,) = find_all(tree, "code")
        assert code.attrs == {}
        assert code.text == "plain\n"


def test_hostile_fence_info_string_never_reaches_markup() -> None:
    html = render_markdown('```"><script>alert(1)</script>\nx = 1\n```\n')

    tree = assert_inert(html)
    (code,) = find_all(tree, "code")
    assert code.attrs == {}
    assert code.text == "x = 1\n"


def test_code_blocks_inside_lists_and_quotes_keep_their_place() -> None:
    html = render_markdown("- item\n\n  ```sh\n  ls\n  ```\n\n> ```js\n> let a;\n> ```\n\nafter\n")

    tree = assert_inert(html)
    blocks = [div for div in find_all(tree, "div") if div.attrs.get("class") == "code-block"]
    assert [block.ancestors()[0] for block in blocks] == ["li", "blockquote"]
    assert [block.children[1].text for block in blocks] == ["ls\n", "let a;\n"]
    assert find_all(tree, "p")[-1].text == "after"


def test_a_forged_code_block_placeholder_stays_text() -> None:
    forged = f"[code-block {'0' * 32} 0]"

    html = render_markdown(f"{forged}\n\n```python\nx = 1\n```\n")

    tree = assert_inert(html)
    assert find_all(tree, "p")[0].text == forged
    assert len(find_all(tree, "button")) == 1


@pytest.mark.parametrize("hostile", HOSTILE_HTML)
def test_raw_html_is_shown_as_text(hostile: str) -> None:
    for source in (hostile, f"before\n\n{hostile}\n\nafter", f"inline {hostile} html"):
        html = render_markdown(source)

        tree = assert_inert(html)
        assert hostile in tree.root.text


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](  javascript:alert(1) )",
        "[x](javas&#99;ript:alert(1))",
        "[x](java\\script:alert(1))",
        "[x](<javascript:alert(1)>)",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "[x](/admin/)",
        "[x](//evil.example/)",
        "[x](#top)",
        "<javascript:alert(1)>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_unsafe_and_relative_links_do_not_become_links(source: str) -> None:
    tree = assert_inert(render_markdown(source))

    assert find_all(tree, "a") == []


@pytest.mark.parametrize(
    ("source", "href", "text"),
    [
        ("[docs](https://example.com/a?b=1)", "https://example.com/a?b=1", "docs"),
        ("[plain](http://intranet.example/)", "http://intranet.example/", "plain"),
        ("<https://example.com/auto>", "https://example.com/auto", "https://example.com/auto"),
        ("<someone@example.com>", "mailto:someone@example.com", "someone@example.com"),
        ("[mail](mailto:someone@example.com)", "mailto:someone@example.com", "mail"),
        ("[x][ref]\n\n[ref]: https://example.com/ref", "https://example.com/ref", "x"),
    ],
)
def test_safe_links_get_rel_and_target(source: str, href: str, text: str) -> None:
    tree = assert_inert(render_markdown(source))

    (link,) = find_all(tree, "a")
    assert link.attrs["href"] == href
    assert link.attrs["rel"] == LINK_REL
    assert link.attrs["target"] == "_blank"
    assert link.text == text


def test_bare_urls_are_not_linkified() -> None:
    tree = assert_inert(render_markdown("see https://example.com and www.example.com"))

    assert find_all(tree, "a") == []


def test_link_title_with_quotes_stays_inside_the_title() -> None:
    source = '[x](https://example.com "say \\"hi\\" onmouseover=alert(1) \' x")'

    tree = assert_inert(render_markdown(source))

    (link,) = find_all(tree, "a")
    assert link.attrs["title"] == 'say "hi" onmouseover=alert(1) \' x'
    assert set(link.attrs) == {"href", "title", "rel", "target"}


def test_images_become_links_and_are_never_loaded() -> None:
    html = render_markdown("![a *tracking* pixel](https://evil.example/track.png)")

    tree = assert_inert(html)
    assert find_all(tree, "img") == []
    (link,) = find_all(tree, "a")
    assert link.attrs["href"] == "https://evil.example/track.png"
    assert link.text == "a tracking pixel"
    assert tree.root.text.strip() == "[image: a tracking pixel]"


def test_image_without_alt_text_shows_its_url() -> None:
    tree = assert_inert(render_markdown("![](https://example.com/x.png)"))

    (link,) = find_all(tree, "a")
    assert link.text == "https://example.com/x.png"


@pytest.mark.parametrize(
    "source",
    [
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        "![x](javascript:alert(1))",
        '![x" onerror="alert(1)](https://example.com/x.png)',
        "[![x](https://example.com/x.png)](javascript:alert(1))",
    ],
)
def test_hostile_images_are_inert(source: str) -> None:
    tree = assert_inert(render_markdown(source))

    assert find_all(tree, "img") == []


def test_raw_html_in_tables_and_code_stays_text() -> None:
    source = (
        "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | `<script>alert(1)</script>` |\n\n"
        "Inline `<iframe src=x>` here.\n\n"
        '```html\n<a href="javascript:alert(1)" onclick="alert(1)">x</a>\n```\n'
    )

    tree = assert_inert(render_markdown(source))

    cells = find_all(tree, "td")
    assert [cell.text for cell in cells] == [
        "<img src=x onerror=alert(1)>",
        "<script>alert(1)</script>",
    ]
    assert [code.text for code in find_all(tree, "code")] == [
        "<script>alert(1)</script>",
        "<iframe src=x>",
        '<a href="javascript:alert(1)" onclick="alert(1)">x</a>\n',
    ]


def test_the_sanitizer_removes_what_markdown_never_emits() -> None:
    # The second layer on its own: raw HTML as it would arrive if the markdown layer let it by.
    hostile = (
        '<p onclick="alert(1)" style="color:red" hx-get="/admin/" data-x="1" id="main">p</p>'
        '<a href="javascript:alert(1)">js</a><a href="/admin/">relative</a>'
        '<a href="https://example.com" rel="opener" target="_self">ok</a>'
        "<img src=x onerror=alert(1)><script>alert(1)</script><style>*{}</style>"
        '<div class="code-block"><button data-copy-code onclick="x()">b</button></div>'
        '<iframe srcdoc="<script>alert(1)</script>"></iframe><svg onload=alert(1)></svg>'
    )

    html = rendering._document_cleaner.clean(hostile)

    tree = assert_inert(html)
    assert find_all(tree, "button") == []
    assert [div.attrs.get("class") for div in find_all(tree, "div")] == [""]
    assert [link.attrs.get("href") for link in find_all(tree, "a")] == [
        None,
        None,
        "https://example.com",
    ]
    assert "alert" not in tree.root.text


def test_streaming_text_is_escaped_and_keeps_line_breaks() -> None:
    # Text between two live renders is cleaned by the relay, then escaped into a pre-wrap span.
    html = stream_append(7, clean_model_text('<script>alert("x")</script>\nline two\x00'))

    assert html == (
        '<span id="message-7-more" hx-swap-oob="beforeend">'
        '&lt;script&gt;alert("x")&lt;/script&gt;\nline two</span>'
    )


def test_render_markdown_accepts_text_that_cannot_be_stored_as_is() -> None:
    html = render_markdown("nul\x00 here \ud800 and \x1b[31mred")

    assert html == "<p>nul here  and [31mred</p>\n"
    html.encode("utf-8")


# Written with escapes so that the joiners and marks under test are visible.
REAL_TEXT = [
    "family \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466, "
    "rainbow flag \U0001f3f3\ufe0f\u200d\U0001f308, wave \U0001f44b\U0001f3fd, "
    "France \U0001f1eb\U0001f1f7, keycap 1\ufe0f\u20e3",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 (Arabic)",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd\u200f (Hebrew, RLM), "
    "\u202bembedding\u202c \u2067isolate\u2069",
    "e\u0301 n\u0303 a\u0308\u0304 Z\u0335\u0321\u031b "
    "\u0924\u093f \u0915\u094d\u0937\u093f (combining marks)",
]


@pytest.mark.parametrize("text", [*REAL_TEXT, "tabs\tnewlines\nand\r\ncarriage returns", ""])
def test_clean_model_text_keeps_real_text_exactly(text: str) -> None:
    assert clean_model_text(text) == text


@pytest.mark.parametrize("text", REAL_TEXT)
def test_rendering_keeps_real_text_exactly(text: str) -> None:
    assert parse(render_markdown(text)).root.text == f"{text}\n"
    assert parse(stream_append(1, clean_model_text(text))).root.text == text


def test_clean_model_text_removes_nul_and_other_c0_controls() -> None:
    assert clean_model_text("a\x00b\x07c\x1bd\x7fe\tf\ng\rh") == "abcd\x7fe\tf\ng\rh"


def test_clean_model_text_drops_lone_surrogates_and_joins_split_pairs() -> None:
    assert clean_model_text("x\ud800y\udfffz\udc00\ud83d") == "xyz"
    assert clean_model_text("smile \ud83d\ude00!") == "smile 😀!"


def test_clean_model_text_makes_every_code_point_storable() -> None:
    # Separated, so that no two surrogates in a row make a valid pair.
    every_code_point = " ".join(map(chr, range(0x110000)))

    cleaned = clean_model_text(every_code_point)

    cleaned.encode("utf-8")
    assert "\x00" not in cleaned
    surrogates = 0xE000 - 0xD800
    removed_controls = 32 - 3
    assert len(cleaned.replace(" ", "")) == 0x110000 - 1 - surrogates - removed_controls
