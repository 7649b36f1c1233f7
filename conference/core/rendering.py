"""Safe rendering of user text: Markdown through an allow-list sanitiser, times in the event's zone."""

from __future__ import annotations

from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any

import markdown as markdown_lib
import nh3
from flask import Flask
from markdown.extensions.toc import TocExtension
from markupsafe import Markup

ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "a", "code", "pre", "blockquote",
                "h3", "h4", "h5", "hr"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str | None, top_heading: int | None = None, line_breaks: bool = False) -> Markup:
    """Markdown to HTML, then every tag, attribute and URL scheme outside the allow-list removed.

    For documents such as legal pages: with `top_heading` "#" becomes that heading level and the ones below
    follow, so the sections keep their headings under the page's own <h1>; with `line_breaks` every line
    break is kept (addresses)."""
    if not text:
        return Markup("")
    extensions: list[Any] = [TocExtension(baselevel=top_heading)] if top_heading else []
    if line_breaks:
        extensions.append("nl2br")
    tags = ALLOWED_TAGS | {f"h{level}" for level in range(top_heading, 7)} if top_heading else ALLOWED_TAGS
    html = markdown_lib.markdown(text, extensions=extensions, output_format="html")
    clean = nh3.clean(html, tags=tags, attributes=ALLOWED_ATTRIBUTES, url_schemes=ALLOWED_URL_SCHEMES,
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)  # noqa: S704 - sanitised by nh3 above


class _TextOf(HTMLParser):
    """Plain text of sanitised Markdown HTML: paragraphs and list items on lines of their own, links as
    "text (address)", emphasis dropped."""

    BLOCKS = frozenset({"p", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            href, start = self.links.pop()
            shown = "".join(self.parts[start:]).strip()
            if href and href not in (shown, f"mailto:{shown}"):
                self.parts.append(f" ({href})")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data.replace("\n", " "))  # the HTML's own line breaks are layout, not text

    def text(self) -> str:
        lines = [" ".join(line.split()) if not line.startswith("- ") else "- " + " ".join(line[2:].split())
                 for line in "".join(self.parts).split("\n")]
        joined = "\n".join(lines)
        while "\n\n\n" in joined:
            joined = joined.replace("\n\n\n", "\n\n")
        return joined.strip()


def markdown_to_text(text: str | None) -> str:
    """Markdown as plain text, for places that show no HTML (calendar descriptions): what a reader of the rendered
    page would read, without the markup characters."""
    if not text:
        return ""
    parser = _TextOf()
    parser.feed(str(render_markdown(text)))
    parser.close()
    return parser.text()


def format_day(value: date) -> str:
    """A calendar day in the page's language, one format per language (as `in_zone`): 18.03.2027, Mar 18, 2027."""
    from babel import dates
    from flask_babel import get_locale

    return dates.format_date(value, "medium", locale=get_locale() or "de")


def register_filters(app: Flask) -> None:
    app.add_template_filter(render_markdown, "markdown")
    app.add_template_filter(format_day, "day")

    @app.template_filter("in_zone")
    def in_zone(value: datetime, timezone: str, style: str = "datetime") -> str:
        """Format an aware datetime in `timezone` (Babel's own helpers would use the default zone)."""
        from zoneinfo import ZoneInfo

        from babel import dates
        from flask_babel import get_locale

        zone, locale = ZoneInfo(timezone), get_locale() or "de"
        if style == "time":
            return dates.format_time(value, "HH:mm", tzinfo=zone, locale=locale)
        if style == "date":
            return dates.format_date(value.astimezone(zone).date(), "full", locale=locale)
        local = value.astimezone(zone)
        return f"{dates.format_date(local.date(), 'medium', locale=locale)}, {local:%H:%M}"
