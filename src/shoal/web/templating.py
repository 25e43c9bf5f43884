"""The node's HTML pages come from Jinja2 templates in shoal/web/templates/.

One environment: autoescape on (every value is escaped unless a template says
otherwise), StrictUndefined (a name a template uses but the code did not pass is
an error, not an empty string), and the filters the pages share: `size`
(1536 -> "1.5 KiB"), `ago` ("12s ago"), `pct` (0.5 -> "50.0%"), `when`
(Tahoe's "%H:%M:%S %d-%b-%Y", local time) and `urlpart` (one path segment,
percent-encoded). Rendering is pure: text in, text out, no reactor. Jinja2 is
imported, and the environment built, at the first render: a node that serves
no page (a storage node) never loads it.
"""

import functools
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shoal.web.page import NAV, ago_text, size_text


def _pct(fraction: float | None) -> str:
    return "?" if fraction is None else f"{100.0 * fraction:.1f}%"


def when_text(t: float | None) -> str:
    """Tahoe's render_time: local time as 12:34:56 03-Dec-2026."""
    return "" if t is None else time.strftime("%H:%M:%S %d-%b-%Y", time.localtime(t))


def _urlpart(text: str) -> str:
    return quote(text, safe="")


if TYPE_CHECKING:
    import jinja2


@functools.cache
def environment() -> "jinja2.Environment":
    """The one template environment (made once, on first use)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shoal.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(size=size_text, ago=ago_text, pct=_pct, when=when_text, urlpart=_urlpart)
    # the navigation bar of a client node's pages, and no reload; a page may pass its own
    env.globals.update(nav=NAV, refresh=None)
    return env


def render(template: str, /, **context: Any) -> str:
    """The named template (e.g. "welcome.html") rendered with `context`."""
    return environment().get_template(template).render(**context)
