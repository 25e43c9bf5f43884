"""What the path walk of shoal.web.directories reads: a PUT of a new file with
replace=false is not preceded by a lookup of its name (the link refuses a name
that is there, 409, so the lookup would only cost a read of the directory);
every other request still looks the last name up. Pure: the walk is driven as
a coroutine, without a reactor or a grid."""

import types
from typing import Any

import pytest
from twisted.web.test.requesthelper import DummyRequest

from shoal.dirnode import DirectoryNode
from shoal.dirnode.errors import NoSuchChildError
from shoal.web.directories import Target, walk


class LookedUp(DirectoryNode):
    """A directory that only records the names looked up in it (none is there)."""

    def __init__(self) -> None:  # no maker, cap or file: nothing else is asked of it
        self.looked: list[str] = []

    async def get(self, name: str) -> Any:
        self.looked.append(name)
        raise NoSuchChildError(name)


def run_walk(method: bytes, path: list[str], **args: str) -> tuple[Target, list[str]]:
    root = LookedUp()
    request = DummyRequest([b""])
    request.method = method
    request.args = {k.encode(): [v.encode()] for k, v in args.items()}
    services = types.SimpleNamespace(nodemaker=object())
    coro = walk(services, root, path, request)  # type: ignore[arg-type]
    with pytest.raises(StopIteration) as done:  # it finishes at once: nothing awaited a reactor
        coro.send(None)
    return done.value.value, root.looked


def test_put_with_replace_false_does_not_look_the_name_up():
    for args in ({"replace": "false"}, {"replace": "false", "format": "SDMF"}, {"replace": "0"}):
        target, looked = run_walk(b"PUT", ["new-name"], **args)
        assert looked == []
        assert target.node is None and target.name == "new-name" and isinstance(target.parent, LookedUp)


@pytest.mark.parametrize(("method", "args"), [
    (b"PUT", {}),  # replace defaults to true: an existing file is replaced, so it must be found
    (b"PUT", {"replace": "true"}),
    (b"PUT", {"replace": "only-files"}),
    (b"PUT", {"replace": "false", "t": "uri"}),
    (b"PUT", {"replace": "false", "t": "mkdir"}),
    (b"POST", {"replace": "false", "t": "upload"}),
    (b"GET", {"replace": "false"}),
])
def test_every_other_request_looks_the_name_up(method, args):
    target, looked = run_walk(method, ["name"], **args)
    assert looked == ["name"] and target.node is None and target.name == "name"
