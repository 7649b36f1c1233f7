"""Hostile inputs shared by the server-side and the browser checks.

Every executable payload calls `window.__canary("<id>")`; the browser test defines that function (and listens
for dialogs), so any payload that runs is counted. The server-side check looks for the same ids in places
where they would run (script bodies, event-handler attributes, javascript:/data: links).
"""

from __future__ import annotations

from html.parser import HTMLParser

CANARY = "__canary"

XSS = [
    '<script>window.__canary("s1")</script>',
    '<img src=x onerror=window.__canary("s2")>',
    '<svg/onload=window.__canary("s3")>',
    '"><svg onload=window.__canary("s4")>',
    "'><img src=x onerror=window.__canary('s5')>",
    '[klick](javascript:window.__canary("s6"))',
    '<a href="javascript:window.__canary(\'s7\')">link s7</a>',
    "[daten s8](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19jYW5hcnkoJ3M4Jyk8L3NjcmlwdD4=)",
    '<iframe srcdoc="<script>parent.__canary(\'s9\')</script>"></iframe>',
    '</textarea><script>window.__canary("s10")</script>',
    '</title><script>window.__canary("s11")</script>',
    '<math><mtext><table><mglyph><style><img src=x onerror=window.__canary("s12")>',
    '<details open ontoggle=window.__canary("s13")>x</details>',
    '![bild](x" onerror="window.__canary(\'s14\'))',
    '<a href="JaVaScRiPt&colon;window.__canary(\'s15\')">s15</a>',
    '`${window.__canary("s16")}`</script><script>window.__canary("s16b")</script>',
    '<style>@import "javascript:window.__canary(\'s17\')";</style>',
    '<form action="javascript:window.__canary(\'s18\')"><button>s18</button></form>',
]

TEMPLATE_INJECTION = ["{{7*191}}", "{% print(7*191) %}", "${7*191}", "#{7*191}", "<%= 7*191 %>",
                      "{{config.SECRET_KEY}}", "{{''.__class__.__mro__}}"]
TEMPLATE_RESULT = "1337"

#: (name, value): text that must be refused wherever people type.
WEIRD_TEXT = [
    ("nul", "Anna\x00Admin"),
    ("escape sequence", "Anna\x1b[31mrot"),
    ("bell and backspace", "Anna\x07\x08"),
    ("bidi override", "Anna\u202egpj.exe"),
    ("bidi embedding", "x\u202by"),
    ("bidi isolate", "x\u2066y\u2069"),
]


class _Finder(HTMLParser):
    """Collect places where a payload would run: script text, on* attributes, dangerous URLs, active tags."""

    URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc", "background"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hits: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and CANARY in value:
                self.hits.append(f"{tag} {name}={value}")
            if name in self.URL_ATTRIBUTES:
                scheme = value.strip().lower().replace("\t", "").replace("\n", "")
                if scheme.startswith(("javascript:", "data:text/html", "vbscript:")) or \
                        (name == "srcdoc" and CANARY in value):
                    self.hits.append(f"{tag} {name}={value}")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and CANARY in data:
            self.hits.append(f"<script>{data}")


def live_payloads(html: str) -> list[str]:
    """Payload fragments that would run if this HTML were loaded (empty: every payload is inert text)."""
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return finder.hits
