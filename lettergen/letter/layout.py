"""Layout: the markup of md, txt and html, so that one template per letter type serves all three.

The letter templates decide the words; the helpers here (Jinja filters, see lettergen.letter.render) decide the
markup. Also the marks that stand for a recorded sentence in a letter's skeleton.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

# A recorded sentence stands in the skeleton as OPEN + its id + CLOSE. Control characters, which a case's
# text may not hold (lettergen.case.model), so no case text can forge one.
OPEN, CLOSE = "\x02", "\x04"


class Fmt:
    """Layout helpers so one template per letter type serves md, txt and html."""

    def __init__(self, fmt: str) -> None:
        self.name = fmt

    def h(self, text: str, level: int) -> Markup:
        """``{{ "Label" | h(2) }}``: a heading whose words are a label (templates/labels.yaml)."""
        t = str(text)
        return self.h_around(str(escape(t)) if self.name == "html" else self.heading_words(t, level), level, len(t))

    def heading_words(self, text: str, level: int) -> str:
        """A heading's words as the format prints them: txt capitalises the first two levels."""
        return text.upper() if self.name == "txt" and level <= 2 else text

    def h_around(self, words: str, level: int, width: int) -> Markup:
        """The heading's markup around ``words`` (printed as they are: a recorded sentence's placeholder, or
        text already escaped and cased for the format), ``width`` characters once the letter is assembled."""
        if self.name == "md":
            return Markup("#" * level + " " + words + "\n\n")
        if self.name == "html":
            return Markup(f"<h{level}>{words}</h{level}>\n")
        if level >= 3:
            return Markup(words + "\n\n")
        rule = "=" if level <= 1 else "-"
        return Markup(words + "\n" + rule * width + "\n\n")

    # Block helpers are Python filters used as ``{% filter para %}...{% endfilter %}``. A letter uses about
    # a hundred sentence and layout blocks; a filter block renders inline, while a macro or a ``{% call %}``
    # block builds and invokes a Jinja Macro each time, which costs several times more.
    def para(self, content: Any) -> Markup | str:
        body = squash(content)
        return Markup("<p>") + body + Markup("</p>\n") if self.name == "html" else body + "\n\n"

    def lines(self, content: Any, cls: str = "block") -> Markup | str:
        rows = [r.strip() for r in content.strip().split("\n") if r.strip()]
        if self.name == "html":
            return Markup('<p class="') + cls + Markup('">') + Markup("<br>\n").join(rows) + Markup("</p>\n")
        sep = "  \n" if self.name == "md" else "\n"
        return sep.join(rows) + "\n\n"

    def _wrap(self, tag: str, body: Markup | str) -> Markup | str:
        return Markup(f"<{tag}>\n") + body + Markup(f"</{tag}>\n") if self.name == "html" else body + "\n"

    def ul(self, content: Markup | str) -> Markup | str:
        return self._wrap("ul", content)

    def ol(self, content: Markup | str) -> Markup | str:
        return self._wrap("ol", content)

    def li(self, content: Any, n: int | None = None) -> Markup | str:
        body = squash(content)
        if self.name == "html":
            return Markup("<li>") + body + Markup("</li>\n")
        return (f"{n}. " if n is not None else "- ") + body + "\n"

    def running(self, content: Any, name: str) -> Markup | str:
        """``{% filter running("patient") %}<label> <sentence>{% endfilter %}``: in html, the words a PDF's
        continuation header repeats on every page after the first (CSS ``string-set`` on the span's class);
        elsewhere the content as it is."""
        if self.name != "html":
            return str(content)
        return Markup(f'<span class="run-{name}">') + Markup(content) + Markup("</span>")

    def bold(self, text: str) -> Markup:
        if self.name == "md":
            return Markup(f"**{text}**")
        if self.name == "html":
            return Markup(f"<strong>{escape(text)}</strong>")
        return Markup(str(text))


# A DOI as a reference prints it ("doi:10.1186/s13569-016-0047-1."), or a web address; the period, comma,
# semicolon or parenthesis that ends the sentence or clause is not part of it.
_LINK = re.compile(
    r"(?P<doi>doi:(?P<id>10\.\d{4,9}/\S+?))(?=[.,;)]?(?:\s|$))|(?P<url>https?://\S+?)(?=[.,;)]?(?:\s|$))"
)


def linked(text: str) -> Markup:
    """A reference's text, escaped for html, with each DOI and URL made a link to itself (a DOI to
    https://doi.org/). The words are the same as the text's: only markup is added, so the validator, which
    reads the text without its tags, finds the sentence unchanged."""
    out = Markup()
    last = 0
    for m in _LINK.finditer(text):
        shown, end = m.group(0), m.end()
        # A closing parenthesis that balances one inside the address belongs to it (".../Authorization%20(PA)").
        while shown.count("(") > shown.count(")") and text[end : end + 1] == ")":
            shown, end = shown + ")", end + 1
        target = shown.removeprefix("doi:")
        href = "https://doi.org/" + quote(target, safe="/:;()._-") if m["doi"] else shown
        out += escape(text[last : m.start()]) + Markup('<a href="{}">{}</a>').format(href, shown)
        last = end
    return out + escape(text[last:])


def iso(d: date) -> str:
    """``{{ d | iso }}``: 2026-11-21. A filter, not ``d.isoformat()``: Jinja calls a filter directly, where a
    method goes through the sandbox's attribute and call checks."""
    return d.isoformat()


def numeric_date(d: date, style: str = "us") -> str:
    """``{{ d | numeric_date(style) }}``: the header's dates, 11/21/2026 (``us``, the default) or 2026-11-21."""
    return d.isoformat() if style == "iso" else d.strftime("%m/%d/%Y")


def long_date(d: date) -> str:
    """``{{ d | long_date }}``: November 21, 2026 (no leading zero on the day)."""
    return d.strftime("%B %d, %Y").replace(" 0", " ")


def squash(text: str) -> Markup | str:
    # Sentences written on separate template lines become one paragraph with single spaces.
    out = " ".join(str(text).split()).replace(CLOSE + OPEN, CLOSE + " " + OPEN)
    return Markup(out) if isinstance(text, Markup) else out
