"""Writing one child of a directory through the web API: a PUT body or a form's
file as a new file (201) or a replacement (200; replace=false: 409), a cap linked
with t=uri, an unlink. Shared by shoal.web.directories and shoal.web.files. The
answer is the child's cap, typed text/html as Tahoe 1.20's is."""

import email.parser
import email.policy
import io
from typing import Any

from twisted.web import http
from twisted.web.server import Request

from shoal.dirnode.contents import check_new_name
from shoal.web.common import (
    NotAvailable,
    WebError,
    cap_answer,
    format_arg,
    private_key_arg,
    replace_arg,
)
from shoal.web.services import WebServices
from shoal.web.upload import body_file, create_mutable, read_body, upload_body, upload_file

MAX_CAP_BODY = 64 * 1024  # bytes of a cap in a PUT t=uri body


def form_files(request: Request) -> list[tuple[str | None, bytes]]:
    """(filename, contents) of every multipart field "file", in order (twisted keeps
    only the contents; the filenames come from the parts' content-disposition)."""
    values = (request.args or {}).get(b"file")
    if not values:
        raise WebError("POST t=upload needs a form field named 'file'")
    filenames: list[str | None] = []
    ctype = request.getHeader(b"content-type") or b""
    content = request.content
    if ctype.lower().startswith(b"multipart/form-data") and content is not None:
        content.seek(0)
        raw = b"content-type: " + ctype + b"\r\n\r\n" + content.read()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        for part in message.iter_parts() if message.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "file":
                filenames.append(part.get_filename())
    filenames += [None] * (len(values) - len(filenames))
    return list(zip(filenames, values, strict=False))


def form_file(request: Request) -> tuple[str | None, bytes]:
    """(filename, contents) of the (first) multipart field "file"."""
    return form_files(request)[0]


def check_replace(request: Request, existed: bool) -> bool | str:
    replace = replace_arg(request)
    if existed and replace is False:
        raise WebError("There was already a child by that name, and you asked me to not replace it.",
                       http.CONFLICT)
    return replace


async def put_child_file(services: WebServices, request: Request, parent: Any, name: str,
                         existed: bool = True) -> str:
    """PUT a body as the file `name` of `parent`: 201 if new, 200 if it replaced one."""
    check_new_name(name)  # before the upload, not only when linking
    replace = check_replace(request, existed)
    if request.getHeader(b"content-range"):
        raise NotAvailable("Content-Range in PUT not yet supported")
    fmt = format_arg(request, "CHK")
    if fmt == "CHK":
        cap = await upload_body(services, request)
    else:
        key = await private_key_arg(request)
        cap = (await create_mutable(services, await read_body(request), fmt or "SDMF", key)).cap.to_string()
    await parent.set_child(name, cap, overwrite=replace)
    request.setResponseCode(http.OK if existed else http.CREATED)
    return cap_answer(request, str(cap))


async def put_child_cap(services: WebServices, request: Request, parent: Any, name: str) -> str:
    """PUT t=uri: link the cap in the body at `name`."""
    replace = replace_arg(request)
    f, size, _ = await body_file(request)
    if size > MAX_CAP_BODY:
        raise WebError(f"a cap of {size} bytes? (at most {MAX_CAP_BODY})", http.REQUEST_ENTITY_TOO_LARGE)
    try:
        cap = f.read(size).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise WebError("the cap in the body is not UTF-8") from None
    if not cap:
        raise WebError("PUT t=uri needs a cap in the body")
    await parent.set_child(name, cap, overwrite=replace)
    return cap_answer(request, cap)


async def upload_form_child(services: WebServices, request: Request, parent: Any, name: str,
                            data: bytes | None = None) -> str:
    """POST t=upload: the form's file (or `data`, one of its files) as `name` in `parent`."""
    check_new_name(name)
    replace = replace_arg(request)
    if data is None:
        _, data = form_file(request)
    fmt = format_arg(request, "CHK")
    if fmt == "CHK":
        cap = str((await upload_file(services, io.BytesIO(data), len(data))).cap)
    else:
        key = await private_key_arg(request)
        cap = (await create_mutable(services, data, fmt or "SDMF", key)).cap.to_string()
    await parent.set_child(name, cap, overwrite=replace)
    return cap_answer(request, cap)


async def unlink_child(services: WebServices, parent: Any, name: str) -> str:
    entry = await parent.unlink(name)
    return str(entry.rw_cap or entry.ro_cap or "")
