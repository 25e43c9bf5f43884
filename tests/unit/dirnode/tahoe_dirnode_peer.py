"""Run by the reference peer's Python (.venv-peer/bin/python), never imported by shoal:
answers one JSON request per line with what Tahoe-LAFS 1.20's own directory code
does, so tests can compare shoal's bytes and rules with it.

Requests (caps are text, bytes are hex):
  {"op": "pack", "children": [[name, rw, ro, metadata], ...], "writekey": hex|null,
   "deep_immutable": bool}                   -> hex of pack_children(...)
  {"op": "unpack", "dircap": cap, "data": hex} -> [[name, rw, ro, metadata], ...]
  {"op": "resolve", "rw": cap|null, "ro": cap|null, "deep_immutable": bool}
                                             -> [write uri, readonly uri, allowed in immutable dir]
  {"op": "update_metadata", "old": obj|null, "new": obj|null, "now": float}
                                             -> json.dumps of the result (key order kept)
  {"op": "add", "dircap": cap, "data": hex, "entries": [[name, rw, ro, metadata|null], ...],
   "overwrite": true|false|"only-files", "now": float}  -> hex of Tahoe's Adder.modify
  {"op": "delete", "dircap": cap, "data": hex, "name": name} -> hex of Tahoe's Deleter.modify
  {"op": "set_metadata", "dircap": cap, "data": hex, "name": name, "metadata": obj, "now": float}
Answers: {"ok": true, "result": ...} or {"ok": false, "error": "<exception class name>"}.
"""

import json
import sys

from allmydata import dirnode
from allmydata.nodemaker import NodeMaker


def _b(text):
    return None if text is None else text.encode("utf-8")


def _s(data):
    return None if data is None else data.decode("utf-8")


MAKER = NodeMaker(None, None, None, None, None, {"k": 3, "n": 10, "happy": 7}, "sdmf", None)


def pack(req):
    children = {}
    for name, rw, ro, metadata in req["children"]:
        children[name] = (MAKER.create_from_cap(_b(rw), _b(ro), name=name), metadata)
    writekey = None if req["writekey"] is None else bytes.fromhex(req["writekey"])
    return dirnode.pack_children(children, writekey, deep_immutable=req["deep_immutable"]).hex()


def unpack(req):
    node = MAKER.create_from_cap(_b(req["dircap"]))
    children = node._unpack_contents(bytes.fromhex(req["data"]))
    return [[name, _s(child.get_write_uri()), _s(child.get_readonly_uri()), metadata]
            for name, (child, metadata) in sorted(children.items())]


def resolve(req):
    node = MAKER.create_from_cap(_b(req["rw"]), _b(req["ro"]), deep_immutable=req["deep_immutable"])
    node.raise_error()
    return [_s(node.get_write_uri()), _s(node.get_readonly_uri()), node.is_allowed_in_immutable_directory()]


def update_metadata(req):
    old = req["old"]
    return json.dumps(dirnode.update_metadata(None if old is None else dict(old), req["new"], req["now"]))


def _at(now):
    dirnode.time.time = lambda: now


def add(req):
    _at(req["now"])
    node = MAKER.create_from_cap(_b(req["dircap"]))
    overwrite = {"only-files": dirnode.ONLY_FILES}.get(req["overwrite"], req["overwrite"])
    adder = dirnode.Adder(node, overwrite=overwrite, create_readonly_node=node._create_readonly_node)
    for name, rw, ro, metadata in req["entries"]:
        adder.set_node(name, node._create_and_validate_node(_b(rw), _b(ro), name), metadata)
    return adder.modify(bytes.fromhex(req["data"]), None, True).hex()


def delete(req):
    node = MAKER.create_from_cap(_b(req["dircap"]))
    new = dirnode.Deleter(node, req["name"]).modify(bytes.fromhex(req["data"]), None, True)
    return None if new is None else new.hex()


def set_metadata(req):
    _at(req["now"])
    node = MAKER.create_from_cap(_b(req["dircap"]))
    setter = dirnode.MetadataSetter(node, req["name"], req["metadata"],
                                    create_readonly_node=node._create_readonly_node)
    return setter.modify(bytes.fromhex(req["data"]), None, True).hex()


OPS = {"add": add, "delete": delete, "set_metadata": set_metadata,"pack": pack, "unpack": unpack, "resolve": resolve, "update_metadata": update_metadata}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            answer = {"ok": True, "result": OPS[req["op"]](req)}
        except Exception as e:  # noqa: BLE001 - the class name is the answer
            answer = {"ok": False, "error": type(e).__name__}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
