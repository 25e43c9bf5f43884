"""Connection hints as Foolscap 23 / Tahoe 1.20 accept them (protocol.hints): every
well-formed hint passes, garbage is refused with a reason, and nothing we accept is
something Foolscap's own grammar would refuse."""

import re

import pytest
from foolscap.connections import tcp as ftcp
from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol.hints import HintError, check_hint, parse_furl_hints, parse_location

I2P_HINT_RE = re.compile(r"^i2p:([A-Za-z.0-9\-]+)(:(\d+){1,5})?$")  # foolscap.connections.i2p (needs txi2p)
TOR_HINT_RE = re.compile(r"^[^:]*:(%s|%s):(\d+){1,5}$" % (ftcp.DOTTED_QUAD_RESTR, ftcp.DNS_NAME_RESTR))  # .tor

ports = st.integers(1, 65535).map(str)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
dns = st.lists(labels, min_size=1, max_size=4).map(".".join)
quads = st.tuples(*[st.integers(0, 255)] * 4).map(lambda q: ".".join(map(str, q)))
ipv6 = st.sampled_from(["[::1]", "[fe80::1%eth0]", "[2001:db8::5]", "[::FFFF:10.0.0.1]"])
tcp_hints = st.builds(lambda h, p: f"tcp:{h}:{p}", st.one_of(dns, quads, ipv6), ports)
legacy_hints = st.builds(lambda h, p: f"{h}:{p}", st.one_of(dns, quads), ports)
tor_hints = st.builds(lambda h, p: f"tor:{h}:{p}", st.one_of(dns.map(lambda d: d + ".onion"), quads), ports)
i2p_hints = st.builds(lambda a, p: f"i2p:{a}" + (f":{p}" if p else ""), dns.map(lambda d: d + ".i2p"),
                      st.one_of(st.none(), ports))
other_hints = st.builds(lambda t, r: f"{t}:{r}", st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(
    lambda t: t not in ("tcp", "tor", "i2p")), st.from_regex(r"[a-z]+=[a-z0-9]+(:[a-z]+=[a-z0-9]+)?", fullmatch=True))
good_hints = st.one_of(tcp_hints, legacy_hints, tor_hints, i2p_hints, other_hints)

GARBAGE = ["", "tcp:", "foo", "tcp:host:notaport", "tcp:host:", "tcp::1234", "tcp:host:0", "tcp:host:65536",
           "host:99999", "tcp:ho st:1", "tor:", "tor:x.onion", "i2p:", "i2p:a:b", ":1234", "tcp:a/b:1",
           "tcp:[zz]:1", "AUTO"]


@given(good_hints)
def test_every_well_formed_hint_is_accepted(hint):
    check_hint(hint)


@given(st.lists(st.one_of(good_hints, st.just("AUTO")), min_size=1, max_size=5),
       st.sampled_from([",", ", ", " ,"]))
def test_a_location_is_its_comma_separated_hints(hints, sep):
    assert parse_location(sep.join(hints)) == hints


@pytest.mark.parametrize("hint", GARBAGE)
def test_garbage_hints_are_refused(hint):
    with pytest.raises(HintError):
        check_hint(hint)


@pytest.mark.parametrize("location", ["", "tcp:a:1,", ",tcp:a:1", "tcp:a:1,,tcp:b:2", "tcp:a:1, foo"])
def test_a_location_with_an_empty_or_bad_hint_is_refused(location):
    with pytest.raises(HintError):
        parse_location(location)


@given(st.text(alphabet=st.sampled_from("tcpori2:0123456789.-[]abz/%, AUTO"), max_size=30))
def test_what_we_accept_foolscap_can_parse(text):
    try:
        check_hint(text)
    except HintError as e:
        assert str(e)
        return
    kind = text.split(":", 1)[0]
    if kind == "tcp":
        assert ftcp.NEW_STYLE_HINT_RE.match(text)
    elif kind == "tor":
        assert TOR_HINT_RE.match(text)
    elif kind == "i2p":
        assert I2P_HINT_RE.match(text)
    elif ftcp.OLD_STYLE_HINT_RE.match(text) is None:
        assert "," not in text and "/" not in text and kind.isalnum()


@given(st.lists(good_hints, min_size=1, max_size=3))
def test_furl_hints(hints):
    tubid = "a" * 32
    assert parse_furl_hints(f"pb://{tubid}@{','.join(hints)}/swiss") == hints


@pytest.mark.parametrize("furl", ["http://x", "pb://short@tcp:a:1/s", "pb://" + "a" * 32 + "@/s",
                                  "pb://" + "a" * 32 + "@tcp:a:1/", "pb://" + "a" * 32 + "@tcp:a:x/s",
                                  "pb://" + "a" * 32 + "@AUTO/s"])
def test_bad_furls_are_refused_without_quoting_the_swissnum(furl):
    with pytest.raises(HintError) as e:
        parse_furl_hints(furl)
    assert "swiss" not in str(e.value) or "swissnum" in str(e.value)
