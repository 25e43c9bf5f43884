"""The HTML of a directory, where a person does their work in a browser: the
listing (type, name, size, modified, and per child download, info, rename,
unlink), the forms that add to it (upload one or several files, with progress
from /static/upload.js; make a directory; attach a cap), Tahoe's
`t=rename-form` and the `t=info` page. Every link and form action is an
absolute path under the path the browser asked for, so a directory reached
by name (/uri/$DIRCAP/docs/) keeps its place."""

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from twisted.web.server import Request

from shoal.encoding.base32 import b2a
from shoal.web.page import size_text
from shoal.web.templating import render, when_text

MAX_PATH = 8192  # characters of a request path echoed back into links


def here_of(request: Request) -> str:
    """The directory's own path as the browser asked for it, ending in a slash."""
    path = (request.path or b"/").decode("ascii", "replace")[:MAX_PATH]
    return path if path.endswith("/") else path + "/"


def parent_of(here: str) -> str | None:
    """The directory above `here` when `here` is a path below a cap (else None)."""
    parts = here.rstrip("/").split("/")  # "", "uri", CAP, names...
    return "/".join(parts[:-1]) + "/" if len(parts) > 3 else None


def crumbs_of(here: str) -> list[tuple[str, str]]:
    """(name, link) of each directory on the way from the cap to `here`: ("top", /uri/CAP/), ..."""
    parts = here.rstrip("/").split("/")  # "", "uri", CAP, names...
    if len(parts) < 3:
        return []
    out = [("top", "/".join(parts[:3]) + "/")]
    for depth in range(3, len(parts)):
        out.append((unquote(parts[depth]), "/".join(parts[:depth + 1]) + "/"))
    return out


def type_text(kind: str, props: dict[str, Any], mutable: bool, readonly: bool) -> str:
    """Tahoe's Type column: DIR, DIR-IMM, DIR-RO, FILE, SSK, SSK-RO, MDMF, ?."""
    if kind == "dirnode":
        return "DIR" if mutable and not readonly else ("DIR-IMM" if not mutable else "DIR-RO")
    if kind == "filenode":
        if not props.get("mutable"):
            return "FILE"
        base = "MDMF" if props.get("format") == "MDMF" else "SSK"
        return base + ("-RO" if "rw_uri" not in props else "")
    return "?"


def child_view(here: str, name: str, kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """One row of the listing: every key a template reads."""
    link = here + quote(name, safe="")
    metadata = props.get("metadata") or {}
    tahoe = metadata.get("tahoe")
    if not isinstance(tahoe, dict):
        tahoe = {}
    modified = tahoe.get("linkmotime", metadata.get("mtime"))
    is_dir = kind == "dirnode"
    size = props.get("size") if kind == "filenode" else None
    when = modified if isinstance(modified, int | float) else None
    return {
        "name": name,
        "type": type_text(kind, props, bool(props.get("mutable")), "rw_uri" not in props),
        "href": link + ("/" if is_dir else ""),
        "href_info": link + ("/" if is_dir else "") + "?t=info",
        "download": link + "?save=true" if kind == "filenode" else None,
        "unlink": f"{here}?t=unlink&name={quote(name, safe='')}&when_done={quote(here, safe='')}",
        "size": size,
        "size_text": "" if size is None else size_text(size),
        "modified": when,
        "modified_text": "" if when is None else when_text(when),
    }


def directory_html(request: Request, title: str, mutable: bool, readonly: bool,
                   children: Iterable[tuple[str, str, dict[str, Any]]]) -> str:
    """The listing of (name, kind, props) children (props as in the directory's t=json)."""
    return directory_page(here_of(request), title, mutable, readonly, children)


def directory_page(here: str, title: str, mutable: bool, readonly: bool,
                   children: Iterable[tuple[str, str, dict[str, Any]]]) -> str:
    """directory_html for the directory at path `here`: pure, so a big listing can be
    rendered off the reactor thread."""
    kind = ("mutable" if mutable else "immutable") + (" read-only" if readonly else "")
    rows = [child_view(here, name, k, props) for name, k, props in sorted(children)]
    return render("directory.html", title=title, heading=title, here=here, parent=parent_of(here),
                  crumbs=crumbs_of(here),
                  kind=kind, children=rows, writable=mutable and not readonly)


def rename_form_html(request: Request, storage_index: bytes | None, readonly: bool, name: str) -> str:
    """Tahoe's t=rename-form: a form posting t=rename from_name= to_name=."""
    si = b2a(storage_index)[:6] if storage_index else "?"
    return render("rename_form.html", title=f"Directory SI={si}", si=si, readonly=readonly,
                  here=here_of(request), name=name)


def info_html(request: Request, name: str, kind: str, size: int | None, storage_index: bytes | None,
              caps: list[tuple[str, str]], is_dir: bool) -> str:
    """The t=info page of a file or directory: what it is and its caps."""
    path = (request.path or b"/").decode("ascii", "replace")[:MAX_PATH]
    view = here_of(request) if is_dir else path
    return render("info.html", title=f"About {name}", name=name, kind=kind, size=size,
                  si=b2a(storage_index) if storage_index else None, caps=caps, view=view,
                  download=None if is_dir else path + "?save=true",
                  check=view if storage_index else None, is_dir=is_dir)
