"""Directories in the web API (webapi.rst of Tahoe-LAFS 1.20), over shoal.dirnode.

/uri/$DIRCAP[/NAME...] walks the path (NFC names). PUT and POST create the
missing intermediate directories (except t=unlink/delete/rename/check), and
a file in the way of one is 409. What the path ends at:

a directory  GET: HTML listing (shoal.web.dirpage), t=json (["dirnode", {"children": {name: [kind,
             {...,"metadata"}]}, "rw_uri", "ro_uri", "verify_uri", "mutable"}]),
             t=info, t=rename-form (name=), t=uri, t=readonly-uri. PUT t=mkdir: its cap; PUT t=uri: relink
             it to the cap in the body. POST t=mkdir|mkdir-with-children|
             mkdir-immutable [name=], t=upload [name=] (multipart "file"; several
             "file" parts without name= are each linked under their filename), t=uri
             (name=, uri=), t=unlink|delete (name=), t=rename (from_name=, to_name=),
             t=relink (from_name=, to_name=, to_dir=), t=set-children|set_children
             (JSON body), t=start-manifest|start-deep-size|start-deep-stats
             (ophandle=, see shoal.web.operations), t=start-deep-check, t=check,
             t=stream-manifest and t=stream-deep-check (JSON lines, shoal.web.deep);
             when_done= redirects after success. DELETE: unlink it from its parent.
a file       shoal.web.files (PUT replaces it: 200; replace=false: 409).
nothing      PUT: upload a file there (201; format=SDMF|MDMF for a mutable one; with
             replace=false the name is not looked up first: the link refuses it,
             409, if it is there after all, leaving the new file unlinked);
             PUT t=uri: link the cap in the body; PUT/POST t=mkdir...: make the
             directory; POST t=upload: upload the form's file; else 404 No such child.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer
from twisted.web import http, resource
from twisted.web.server import Request

from shoal import cpu
from shoal.caps import parse_cap
from shoal.dirnode import (
    DirectoryNode,
    Entry,
    ImmutableFileNode,
    Node,
    NodeMaker,
    UnknownNode,
    VerifierNode,
)
from shoal.dirnode.contents import check_new_name
from shoal.dirnode.errors import CorruptDirectoryError, NoSuchChildError
from shoal.encoding import bounded_json
from shoal.mutable.filenode import MutableFileNode
from shoal.web.children import (
    check_replace,
    form_files,
    put_child_cap,
    put_child_file,
    unlink_child,
    upload_form_child,
)
from shoal.web.common import (
    NotAvailable,
    WalkError,
    WebError,
    arg,
    format_arg,
    replace_arg,
    run_async,
    t_arg,
)
from shoal.web.deep import DEEP_OPERATIONS, STREAMS, check_object, start_deep, stream
from shoal.web.dirpage import directory_page, here_of, info_html, rename_form_html
from shoal.web.files import FileResource, file_resource, filenode_info
from shoal.web.services import WebServices
from shoal.web.upload import read_body

MAX_CHILDREN_JSON = 16 * 1024 * 1024  # bytes of a children= JSON body
NO_INTERMEDIATES = ("delete", "unlink", "rename", "rename-form", "check")
MKDIR_TS = ("mkdir", "mkdir-with-children", "mkdir-immutable")


def nodemaker(services: WebServices) -> NodeMaker:
    """The node's NodeMaker: every cap in a URL becomes its node there."""
    if services.nodemaker is None:
        raise NotAvailable("directories are not available on this node")
    maker: NodeMaker = services.nodemaker
    return maker


# --- JSON -----------------------------------------------------------------------------


def child_json(node: Node, entry: Entry) -> list[Any]:
    """Tahoe's [type, {...}] of a listed child, without the network."""
    info: dict[str, Any]
    match node:
        case DirectoryNode():
            kind, info = "dirnode", {"mutable": node.is_mutable()}
        case ImmutableFileNode() | MutableFileNode():
            kind, info = "filenode", filenode_info(node)
        case _:  # unknown caps, and the CHK verify caps a directory may hold
            kind, info = "unknown", {}
    info["metadata"] = entry.metadata
    if entry.rw_cap:
        info["rw_uri"] = entry.rw_cap
    if entry.ro_cap:
        info["ro_uri"] = entry.ro_cap
    if node.verifier_cap is not None:
        info["verify_uri"] = node.verifier_cap.to_string()
    return [kind, info]


async def directory_json(node: DirectoryNode) -> list[Any]:
    children = await node.list_nodes()
    data: dict[str, Any] = {"children": {name: child_json(n, e) for name, (n, e) in children.items()}}
    data["ro_uri"] = node.readonly_cap.to_string()
    if not node.is_readonly():
        data["rw_uri"] = node.cap.to_string()
    verifier = node.verifier_cap
    if verifier is not None:
        data["verify_uri"] = verifier.to_string()
    data["mutable"] = node.is_mutable()
    return ["dirnode", data]


def children_from_json(body: bytes) -> dict[str, tuple[str | None, str | None, dict[str, Any] | None]]:
    """Tahoe's children JSON ({name: [kind, {"rw_uri", "ro_uri", "metadata"}]}) -> ChildSpecs."""
    if not body.strip():
        return {}
    try:
        data = bounded_json.loads(body)
    except bounded_json.BadJSONError as e:
        raise WebError(f"the children JSON does not parse: {e}") from None
    if not isinstance(data, dict):
        raise WebError("the children JSON must be an object of name: [type, properties]")
    out: dict[str, tuple[str | None, str | None, dict[str, Any] | None]] = {}
    for name, value in data.items():
        if not (isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[1], dict)):
            raise WebError(f"child {name!r}: expected [type, {{properties}}]")
        props = value[1]
        rw, ro, md = props.get("rw_uri"), props.get("ro_uri"), props.get("metadata")
        if not all(v is None or isinstance(v, str) for v in (rw, ro)) or not (md is None or isinstance(md, dict)):
            raise WebError(f"child {name!r}: rw_uri and ro_uri must be text, metadata an object")
        out[name] = (rw, ro, md)
    return out


# --- the walk -------------------------------------------------------------------------


class Target:
    """Where a path ends: the node (None: nothing there yet), its parent and name."""

    def __init__(self, node: Node | None, parent: DirectoryNode | None = None, name: str | None = None,
                 entry: Entry | None = None) -> None:
        self.node, self.parent, self.name, self.entry = node, parent, name, entry


async def walk(services: WebServices, root: DirectoryNode, path: list[str], request: Request) -> Target:
    maker = nodemaker(services)
    t = t_arg(request)
    create = request.method in (b"PUT", b"POST") and t not in NO_INTERMEDIATES
    # a PUT of a new file with replace=false needs no lookup of its name: the link's
    # own check (overwrite=False) refuses a name already there with the same 409, and
    # the new-name case, the one such a PUT expects, saves a read of the directory
    unlooked = request.method == b"PUT" and t == "" and replace_arg(request) is False
    node: Node = root
    parent: DirectoryNode | None = None
    name: str | None = None
    entry: Entry | None = None
    for depth, segment in enumerate(path):
        if not isinstance(node, DirectoryNode):  # Tahoe's ErrorPages, with their own titles
            if create:
                raise WalkError.page(http.CONFLICT, f"Unable to create directory {name!r}: a file was in the way")
            raise WalkError.page(http.BAD_REQUEST, f"Files have no children named {segment!r}")
        last = depth == len(path) - 1
        if last and unlooked:
            return Target(None, node, segment)
        try:
            entry = await node.get(segment)
        except NoSuchChildError:
            if not last:
                if not create:
                    raise
                for new in path[depth:]:  # each one will be new: refuse a bad one before making any
                    check_new_name(new)
                child = await node.create_subdirectory(segment)
                parent, node, name, entry = node, child, segment, None
                continue
            return Target(None, node, segment)
        parent, name = node, segment
        node = maker.node_for_entry(entry)
    return Target(node, parent, name, entry)


class DirectoryResource(resource.Resource):
    """/uri/$DIRCAP[/PATH]: resolves the path, then acts on what it found. `root` is
    the node of $DIRCAP: a directory, or a directory's verify cap (which only errs)."""

    isLeaf = True

    def __init__(self, services: WebServices, root: DirectoryNode | VerifierNode, rest: list[str]) -> None:
        super().__init__()
        self.services = services
        self.root = root
        self.rest = [s for s in rest]
        if self.rest and self.rest[-1] == "":
            self.rest.pop()  # a trailing slash names the directory itself

    def render(self, request: Request) -> Any:
        return run_async(request, lambda: self._checked(request))

    async def _checked(self, request: Request) -> bytes | str | None:
        try:
            return await self._dispatch(request)
        except CorruptDirectoryError as e:
            if self.root.format == "LIT":
                raise WebError(f"Invalid capability: the literal directory it holds is malformed: {e}") from None
            raise

    async def _dispatch(self, request: Request) -> bytes | str | None:
        root = self.root
        if not isinstance(root, DirectoryNode):
            raise WebError("a directory verify cap cannot be read or listed; use it with t=check")
        try:
            target = await walk(self.services, root, self.rest, request)
        except (WalkError, defer.CancelledError):
            raise
        except Exception as e:  # found while walking the path: Tahoe's getChild answers an ErrorPage
            raise WalkError(e) from None
        node = target.node
        match node:
            case None:
                return await self._missing(request, target)
            case DirectoryNode():
                return await DirectoryOps(self.services, node, target).run(request)
            case UnknownNode():
                return await _unknown(request, node, target)
        handler = file_resource(self.services, node, name=target.name, parent=target.parent,
                                metadata=target.entry.metadata if target.entry is not None else None)
        method = request.method
        render: Callable[[Request], Awaitable[Any]] | None = {
            b"GET": handler._get, b"HEAD": handler._head, b"PUT": handler._put, b"POST": handler._post,
            b"DELETE": handler._delete,
        }.get(method)
        if render is None:
            raise WebError(f"{method.decode('ascii', 'replace')} is not supported here", http.NOT_ALLOWED)
        return await render(request)  # type: ignore[no-any-return]

    async def _missing(self, request: Request, target: Target) -> bytes | str | None:
        t = t_arg(request)
        parent, name = target.parent, target.name or ""
        if request.method in (b"PUT", b"POST") and t in MKDIR_TS:
            node = await make_directory(self.services, request, t, parent=parent, name=name)
            return node.cap.to_string()
        if request.method == b"PUT" and t == "":
            return await put_child_file(self.services, request, parent, name, existed=False)
        if request.method == b"PUT" and t == "uri":
            return await put_child_cap(self.services, request, parent, name)
        if request.method == b"POST" and t == "upload":
            return await _when_done(request, await upload_form_child(self.services, request, parent, name))
        raise WalkError(WebError(f"No such child: {name}", http.NOT_FOUND))  # Tahoe: in getChild


async def _unknown(request: Request, node: UnknownNode, target: Target) -> str:
    t = t_arg(request)
    if request.method == b"GET" and t == "json" and target.entry is not None:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return json.dumps(child_json(node, target.entry), indent=1) + "\n"
    if request.method == b"DELETE" and target.parent is not None:
        entry = await target.parent.unlink(target.name or "")
        return str(entry.rw_cap or entry.ro_cap or "")
    raise WebError(f"GET unknown URI type: can only do t=info and t=json, not t={t}.")


async def _when_done(request: Request, result: str | bytes) -> str | bytes:
    when_done = arg(request, "when_done")
    if when_done:
        request.redirect(when_done.encode("utf-8"))
        return b""
    return result


# --- operations on children -------------------------------------------------------------


async def make_directory(services: WebServices, request: Request, t: str, *, parent: Any = None,
                         name: str | None = None, private_key: Any = None) -> Any:
    """A new directory for t=mkdir/mkdir-with-children/mkdir-immutable, linked at
    parent/name when a parent is given; a mutable one unlinked is signed with
    `private_key` when given."""
    maker = nodemaker(services)
    fmt = format_arg(request, None)
    if fmt == "CHK":
        raise WebError(f"format=CHK not accepted for t={t}")
    kids = {}
    if t in ("mkdir-with-children", "mkdir-immutable"):
        kids = children_from_json(await read_body(request, MAX_CHILDREN_JSON))
    elif request.method == b"POST" and parent is None:
        ctype = request.getHeader(b"content-type") or b""
        if not ctype.startswith(b"multipart/form-data") and (await read_body(request, MAX_CHILDREN_JSON)).strip():
            raise WebError("t=mkdir does not accept children=, try t=mkdir-with-children instead")
    op = services.history.start("mkdir", None)
    try:
        if t == "mkdir-immutable":
            node = await maker.create_immutable_directory(kids)
            if parent is not None:
                await parent.set_child(name, node.cap.to_string(), overwrite=False)
        elif parent is not None:
            overwrite = replace_arg(request) if t == "mkdir" else False
            node = await parent.create_subdirectory(name, kids or None, overwrite=overwrite, format=fmt or "SDMF")
        else:
            node = await maker.create_directory(kids or None, format=fmt or "SDMF", private_key=private_key)
    except BaseException as e:
        op.finish(e)
        raise
    op.storage_index = node.storage_index
    op.finish()
    return node


async def mkdir_unlinked(services: WebServices, request: Request, t: str, private_key: Any = None) -> str:
    """PUT /uri?t=mkdir, POST /uri?t=mkdir|mkdir-with-children|mkdir-immutable."""
    node = await make_directory(services, request, t, private_key=private_key)
    return str(node.cap.to_string())


# --- a directory ------------------------------------------------------------------------


class DirectoryOps:
    def __init__(self, services: WebServices, node: DirectoryNode, target: Target) -> None:
        self.services = services
        self.node = node
        self.parent = target.parent
        self.name = target.name

    async def run(self, request: Request) -> bytes | str | None:
        method = request.method
        if method in (b"GET", b"HEAD"):
            return await self.get(request)
        if method == b"PUT":
            return await self.put(request)
        if method == b"POST":
            return await self.post(request)
        if method == b"DELETE":
            if self.parent is None:
                raise WebError("DELETE needs a directory: DELETE /uri/$DIRCAP/NAME unlinks NAME")
            return await unlink_child(self.services, self.parent, self.name or "")
        raise WebError(f"{method.decode('ascii', 'replace')} is not supported on a directory", http.NOT_ALLOWED)

    async def get(self, request: Request) -> bytes | str:
        t = t_arg(request)
        if request.method == b"HEAD" and t:
            raise WebError(f"HEAD directory: bad t={t}")
        if t == "json":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return json.dumps(await directory_json(self.node), indent=1) + "\n"
        if t == "uri":
            return self.node.cap.to_string()
        if t == "readonly-uri":
            return self.node.readonly_cap.to_string()
        if t in ("", "info", "rename-form"):
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if t == "":
            return await self.listing(request)
        if t == "info":
            return self.info(request)
        if t == "rename-form":
            node = self.node
            return rename_form_html(request, node.storage_index, node.is_readonly(), arg(request, "name") or "")
        raise WebError(f"GET directory: bad t={t}")

    async def listing(self, request: Request) -> str:
        node = self.node
        children = await node.list_nodes()
        rows = [(name, *child_json(child, entry)) for name, (child, entry) in children.items()]
        # ~0.1 ms a row: a big directory's page is rendered in the CPU pool, not on the reactor
        page: str = await cpu.run(directory_page, here_of(request), self.name or "Directory", node.is_mutable(),
                                  node.is_readonly(), rows)
        return page

    def info(self, request: Request) -> str:
        node = self.node
        kind = ("mutable" if node.is_mutable() else "immutable") + " directory" + (
            " (read-only)" if node.is_readonly() else "")
        caps = [] if node.is_readonly() else [("Read-write cap", node.cap.to_string())]
        caps.append(("Read-only cap", node.readonly_cap.to_string()))
        if node.verifier_cap is not None:
            caps.append(("Verify cap", node.verifier_cap.to_string()))
        return info_html(request, self.name or "this directory", kind, None, node.storage_index, caps, True)

    async def put(self, request: Request) -> str:
        t = t_arg(request)
        if t == "mkdir":
            return self.node.cap.to_string()
        if t == "uri":
            if self.parent is None:
                raise WebError("PUT t=uri needs a parent directory")
            check_replace(request, True)
            return await put_child_cap(self.services, request, self.parent, self.name or "")
        raise WebError("PUT to a directory")

    async def post(self, request: Request) -> bytes | str:
        t = t_arg(request)
        handlers: dict[str, Callable[[Request], Awaitable[str | bytes]]] = {
            "mkdir": self._mkdir, "mkdir-with-children": self._mkdir, "mkdir-immutable": self._mkdir,
            "upload": self._upload, "uri": self._uri, "delete": self._unlink, "unlink": self._unlink,
            "rename": self._rename, "relink": self._relink, "set-children": self._set_children,
            "set_children": self._set_children,
        }
        if t in handlers:
            return await _when_done(request, str(await handlers[t](request)))
        if t in DEEP_OPERATIONS:
            return start_deep(self.services, request, self.node, t)
        if t in STREAMS:
            return await stream(self.services, request, self.node, t)
        if t == "check":
            return await _when_done(request, await check_object(self.services, request, self.node.cap))
        raise WebError(f"POST to a directory with bad t={t}")

    async def _mkdir(self, request: Request) -> str:
        t = t_arg(request)
        name = arg(request, "name")
        if not name:
            return self.node.cap.to_string()
        node = await make_directory(self.services, request, t, parent=self.node, name=name)
        return str(node.cap.to_string())

    async def _upload(self, request: Request) -> str:
        files = form_files(request)
        if len(files) > 1 and not arg(request, "name"):
            return await self._upload_several(request, files)
        filename, _ = files[0]
        name = (arg(request, "name") or filename or "").strip()
        if not name:
            raise WebError("upload requires a name")
        if "/" in name:
            raise WebError("name= may not contain a slash")
        try:
            entry = await self.node.get(name)
        except NoSuchChildError:
            entry = None
        child = nodemaker(self.services).node_for_entry(entry) if entry is not None else None
        if isinstance(child, MutableFileNode) and not child.is_readonly():
            file = FileResource(self.services, child, name=name, parent=self.node)
            return str(await file._post(request))
        return await upload_form_child(self.services, request, self.node, name)

    async def _upload_several(self, request: Request, files: list[tuple[str | None, bytes]]) -> str:
        """A form with several files (<input type=file multiple>): each under its own
        filename, every name checked before any upload; the caps, one a line."""
        names = [(filename or "").strip() for filename, _ in files]
        for name in names:
            if not name or "/" in name:
                raise WebError("each uploaded file needs a filename without a slash")
            check_new_name(name)
        if len(set(names)) != len(names):
            raise WebError("two uploaded files have the same filename")
        caps = [await upload_form_child(self.services, request, self.node, name, data)
                for name, (_, data) in zip(names, files, strict=True)]
        return "\n".join(caps)

    async def _uri(self, request: Request) -> str:
        cap = arg(request, "uri")
        if not cap:
            raise WebError("set-uri requires a uri")
        name = arg(request, "name")
        if not name:
            raise WebError("set-uri requires a name")
        await self.node.set_child(name, cap, overwrite=replace_arg(request))
        return cap

    async def _unlink(self, request: Request) -> str:
        await self.node.unlink(arg(request, "name") or "")
        return "thing unlinked"

    async def _rename(self, request: Request) -> str:
        if arg(request, "to_dir") is not None:
            raise WebError("to_dir= is not valid for rename")
        if arg(request, "to_name") is None:
            raise WebError("to_name= is required for rename")
        return await self._relink(request)

    async def _relink(self, request: Request) -> str:
        replace = replace_arg(request)
        from_name = arg(request, "from_name")
        if from_name is None:
            raise WebError("from_name= is required")
        from_name = from_name.strip()
        to_name = (arg(request, "to_name") or from_name).strip()
        if "/" in from_name:
            raise WebError("from_name= may not contain a slash")
        if "/" in to_name:
            raise WebError("to_name= may not contain a slash")
        to_dir = arg(request, "to_dir")
        new_parent = self.node
        if to_dir is not None and to_dir.strip() != self.node.cap.to_string():
            parts = to_dir.strip().split("/")
            root = nodemaker(self.services).node_for(parse_cap(parts[0]))
            if not isinstance(root, DirectoryNode):
                raise WebError("to_dir is not a directory")
            found: Node = root
            if parts[1:]:
                entry = await root.get_at_path([p for p in parts[1:] if p])
                found = nodemaker(self.services).node_for_entry(entry) if entry is not None else root
            if not isinstance(found, DirectoryNode):
                raise WebError("to_dir is not a directory")
            new_parent = found
        await self.node.move_child_to(from_name, new_parent, to_name, overwrite=replace)
        return "thing moved"

    async def _set_children(self, request: Request) -> str:
        replace = replace_arg(request)
        children = children_from_json(await read_body(request, MAX_CHILDREN_JSON))
        await self.node.set_children(children, overwrite=replace)
        return "Okay so I did it."

