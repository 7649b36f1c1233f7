"""Safe rendering of user text: Markdown through an allow-list sanitiser, times in the event's zone."""

from __future__ import annotations

from datetime import date, datetime
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
