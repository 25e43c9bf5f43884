"""The web API's status and text follow from an error's type alone: every
ShoalError subclass in the package, built with arbitrary message text, maps to
a status its fault allows (no caller's error is a 5xx but 501 Unsupported, a
bug is a 500 that shows no details), and Tahoe 1.20's texts where it has them."""

import importlib
import inspect
import pkgutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shoal
from shoal.caps import BadCapError
from shoal.dirnode.errors import CorruptDirectoryError, ExistingChildError, NoSuchChildError
from shoal.errors import (
    ConflictError,
    ContradictoryCapError,
    Fault,
    GridFullError,
    NotEnoughSharesError,
    NotFoundError,
    NotWritableError,
    PreconditionFailedError,
    ShoalError,
    TooLargeError,
    UnrecoverableError,
    UnsupportedError,
)
from shoal.immutable.decoder import NotEnoughSharesError as ImmutableNotEnoughShares
from shoal.immutable.placer import UploadFullError, UploadUnhappinessError, unhappiness_error
from shoal.mutable.errors import NotEnoughSharesError as MutableNotEnoughShares
from shoal.placement.happiness import ServerAnswer
from shoal.web.common import NotAvailable, WebError, humanize, is_bug


def _import_everything() -> None:
    for info in pkgutil.walk_packages(shoal.__path__, "shoal."):
        importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found.add(sub)
        found |= _subclasses(sub)
    return found


_import_everything()
CLASSES = sorted(_subclasses(ShoalError), key=lambda c: f"{c.__module__}.{c.__qualname__}")
IDS = [f"{c.__module__}.{c.__qualname__}" for c in CLASSES]


def build(cls: type[ShoalError], text: str, number: int) -> ShoalError:
    """An instance through the class's own constructor: ints where it wants ints
    (a 4xx where it wants a status), `text` for everything else."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL:  # Exception's own (*args)
        return cls(text)
    required = [p for p in params if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    return cls(*(number if p.annotation in (int, "int") else text for p in required))


def test_the_walk_finds_every_package_error():
    assert len(CLASSES) >= 110
    assert NoSuchChildError in CLASSES and UploadFullError in CLASSES and NotAvailable in CLASSES
    for cls in CLASSES:
        assert isinstance(cls.fault, Fault), cls


def expected_status(cls: type[ShoalError]) -> int | None:
    """The status the semantic base names (None: the fault's default or the instance's own)."""
    for base, status in ((NotFoundError, 404), (PreconditionFailedError, 412), (ConflictError, 409), (NotWritableError, 403),
                         (TooLargeError, 413), (UnsupportedError, 501), (UnrecoverableError, 410),
                         (ContradictoryCapError, 410),
                         (GridFullError, 507)):
        if issubclass(cls, base):
            return status
    return None


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(detail=st.text(min_size=1, max_size=40), number=st.integers(400, 499))
def test_status_follows_the_fault(cls, detail, number):
    marker = "secret-" + detail
    exc = build(cls, marker, number)
    text, status = humanize(exc)
    assert isinstance(text, str) and "Traceback" not in text
    fault = cls.fault
    if fault is Fault.CALLER:
        assert 400 <= status < 500 or (status == 501 and issubclass(cls, UnsupportedError))
    elif fault is Fault.GRID:
        assert status in (410, 503, 507)
    elif fault is Fault.SERVER:
        assert status == 502
    else:
        assert status == 500
        assert marker not in text and text == f"Internal error ({cls.__name__}); see the node's log"
    assert is_bug(exc) == (fault is Fault.BUG)
    wanted = expected_status(cls)
    if wanted is not None and not issubclass(cls, WebError):
        assert status == wanted
    if issubclass(cls, WebError):
        assert status == exc.code


@given(st.text(max_size=40))
def test_other_exceptions_are_500_without_internals(detail):
    for exc in (RuntimeError("secret-" + detail), KeyError("secret-" + detail), AssertionError(detail)):
        text, status = humanize(exc)
        assert status == 500
        assert "secret-" not in text and text == f"Internal error ({type(exc).__name__}); see the node's log"
        assert is_bug(exc)


def test_both_not_enough_shares_errors_are_the_one_kind():
    for cls in (ImmutableNotEnoughShares, MutableNotEnoughShares):
        assert issubclass(cls, NotEnoughSharesError) and cls.fault is Fault.GRID
        text, status = humanize(cls("found 2 of 3 shares"))
        assert status == 410
        assert text.startswith("NotEnoughSharesError: This indicates that some servers were unavailable")
        assert text.endswith("The full error message is:\nfound 2 of 3 shares")


def test_tahoe_texts():
    assert humanize(NoSuchChildError("kid")) == ("No such child: kid", 404)
    assert humanize(ExistingChildError("kid")) == (
        "There was already a child by that name, and you asked me to not replace it.", 409)
    text, status = humanize(BadCapError("URI:CHK", "key", "is short"))
    assert status == 400 and text == "Invalid capability: malformed URI:CHK cap: key is short"
    text, status = humanize(CorruptDirectoryError("entry 3: bad netstring"))
    assert status == 410 and text.startswith("CorruptDirectoryError: ") and text.endswith("entry 3: bad netstring")
    assert humanize(UnrecoverableError("x"))[0].startswith("UnrecoverableFileError: the directory (or mutable file)")
    assert humanize(NotAvailable("mutable files are not available on this node")) == (
        "mutable files are not available on this node", 501)


def test_web_errors_are_4xx_only():
    assert humanize(WebError("First beyond end of file", 416)) == ("First beyond end of file", 416)
    with pytest.raises(ValueError):
        WebError("nope", 500)


def _answer(**kw) -> ServerAnswer[bytes]:
    a: ServerAnswer[bytes] = ServerAnswer(b"s")
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def test_unhappy_upload_says_in_its_type_whether_servers_were_full():
    full = unhappiness_error("m", [_answer(allocated={0}), _answer(refused={1, 2})])
    assert type(full) is UploadFullError and isinstance(full, UploadUnhappinessError)
    assert humanize(full)[1] == 507
    readonly = unhappiness_error("m", [_answer(readonly=True), _answer(already={1})])
    assert type(readonly) is UploadFullError
    few = unhappiness_error("m", [_answer(allocated={0}), _answer(already={1})])
    assert type(few) is UploadUnhappinessError and humanize(few)[1] == 503
    mixed = unhappiness_error("m", [_answer(refused={1}), _answer(error="connection lost")])
    assert type(mixed) is UploadUnhappinessError and humanize(mixed)[1] == 503


def test_a_chk_cap_with_a_wrong_size_is_410_as_tahoe():
    """issue #15: Tahoe fails such a download (410); shoal answered 500, then 400."""
    from shoal.immutable.decoder import UEBMismatchError

    text, status = humanize(UEBMismatchError("UEB says size 800, the cap says 801"))
    assert status == 410 and "the cap says 801" in text and UEBMismatchError.fault is Fault.CALLER
