"""Safe rendering of user text: Markdown through an allow-list sanitiser, times in the event's zone."""

from __future__ import annotations

from datetime import date, datetime

import markdown as markdown_lib
import nh3
from flask import Flask
from markupsafe import Markup

ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "a", "code", "pre", "blockquote",
                "h3", "h4", "h5", "hr"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str | None) -> Markup:
    """Markdown to HTML, then every tag, attribute and URL scheme outside the allow-list removed."""
    if not text:
        return Markup("")
    html = markdown_lib.markdown(text, extensions=[], output_format="html")
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=ALLOWED_URL_SCHEMES,
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
