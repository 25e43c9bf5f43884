"""The Foolscap introducer protocol (v2) of Tahoe-LAFS 1.20: remote names, methods, constraints.

A publisher calls publish_v2 with one signed announcement (the 3-tuple
(JSON bytes, b"v0-" signature, b"v0-" key), see shoal.protocol.announcement)
and a canary; a subscriber passes itself to subscribe_v2 and is then called
with announce_v2(set of such tuples). Announcements are declared Any(), as in
Tahoe: their shape is checked by unsign(), not by Foolscap.
"""

# Foolscap reads these method signatures as schemas: no self, constraints as
# default values.
# mypy: disable-error-code="misc"
# ruff: noqa: B008, N805

from foolscap.api import Any, DictOf, Referenceable, RemoteInterface, SetOf, StringConstraint

FURL = StringConstraint(1000)
Announcement_v2 = Any()
SubscriberInfo = DictOf(bytes, Any())

# Keys of the get_version() answer of an introducer.
INTRODUCER_V2 = b"http://allmydata.org/tahoe/protocols/introducer/v2"
APPLICATION_VERSION = b"application-version"


class RIIntroducerSubscriberClient_v2(RemoteInterface):  # noqa: N801
    __remote_name__ = "RIIntroducerSubscriberClient_v2.tahoe.allmydata.com"

    def announce_v2(announcements=SetOf(Announcement_v2)):
        return None


class RIIntroducerPublisherAndSubscriberService_v2(RemoteInterface):  # noqa: N801
    __remote_name__ = "RIIntroducerPublisherAndSubscriberService_v2.tahoe.allmydata.com"

    def get_version():
        return DictOf(bytes, Any())

    def publish_v2(announcement=Announcement_v2, canary=Referenceable):
        return None

    def subscribe_v2(
        subscriber=RIIntroducerSubscriberClient_v2,
        service_name=bytes,
        subscriber_info=SubscriberInfo,
    ):
        return None
