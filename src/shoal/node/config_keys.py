"""The registry of every tahoe.cfg setting shoal knows: `KEYS`.

Each (section, key) that shoal reads, or accepts for Tahoe-LAFS 1.20's sake
without acting on, is one `Key` here with its type, default and meaning (and
Tahoe's behaviour where shoal's differs). `NodeConfig` refuses to read a key
that is not registered, `load_config` refuses a file naming one that is not,
and docs/configuration.md is rendered from this table
(`python -m shoal.node.config_keys --write docs/configuration.md`, or
`make config-doc`); tests/unit/node/test_config_reference.py fails when the
code, this table and the document disagree.

Sections in `OPEN_SECTIONS` take any key (Tahoe's connection handlers and grid
manager lists, which shoal does not use); their keys are not registered.
"""

import sys
from collections.abc import Iterable, Mapping

import attrs


@attrs.frozen
class Key:
    """One tahoe.cfg setting: where it is, what it takes, what it does."""

    section: str
    name: str
    type: str  # text, boolean, integer, size, duration, date, endpoint, FURL, path, number, list
    default: str  # as it would be written in tahoe.cfg; "" = unset
    meaning: str
    tahoe: str = ""  # Tahoe 1.20's behaviour where it differs; "" = the same
    used: bool = True  # False: accepted (a Tahoe node directory runs) but shoal does nothing with it


class UnregisteredKeyError(LookupError):
    """The code read a tahoe.cfg key missing from shoal.node.config_keys.KEYS (a bug, not a user error)."""


_IGNORED = "**Ignored** (accepted so that a Tahoe node directory runs)."

_ENTRIES: tuple[Key, ...] = (
    # --- [node] -----------------------------------------------------------------------------
    Key("node", "nickname", "text", "", "Name shown to other nodes in announcements and on welcome pages."),
    Key("node", "web.port", "endpoint", "",
        "Twisted endpoint of the web API and welcome page (e.g. tcp:3456:interface=127.0.0.1); "
        "unset or empty: no web server. The URL is written to node.url.",
        "Tahoe's default for a node without the key is also no web server; create-node writes "
        "tcp:3456:interface=127.0.0.1 in both."),
    Key("node", "web.min_body_rate", "size", "1KiB",
        "Bytes per second a request body on the web port must deliver in every body_rate_window "
        "(the first window is its grace period); a slower client is disconnected. 0 turns it off.",
        "Tahoe has no such limit (twisted.web's idle timeout, reset by every byte)."),
    Key("node", "web.body_rate_window", "integer", "30",
        "Seconds of each window in which web.min_body_rate is checked."),
    Key("node", "web.static", "path", "", _IGNORED + " (Tahoe serves static files from this directory.)",
        used=False),
    Key("node", "tub.port", "endpoint", "",
        "Listening endpoint(s) of the node's Foolscap Tub, comma-separated; 'disabled' (with "
        "tub.location = disabled) for a client that listens nowhere. Also carries Tahoe 1.20's "
        "HTTPS storage protocol on a storage node.",
        "Tahoe falls back to the port in BASEDIR/client.port (introducer.port), or allocates one "
        "and writes it there, when the key is missing; shoal requires it (create-node writes it)."),
    Key("node", "tub.location", "text", "",
        "Comma-separated connection hints other nodes use to reach this one (tcp:HOST:PORT); "
        "'disabled' with tub.port = disabled.",
        "Tahoe detects local addresses when the key is missing or says AUTO; shoal requires "
        "explicit hints."),
    Key("node", "log_gatherer.furl", "FURL", "", _IGNORED + " (Tahoe sends its Foolscap log there.)",
        used=False),
    Key("node", "timeout.keepalive", "integer", "", _IGNORED, used=False),
    Key("node", "timeout.disconnect", "integer", "", _IGNORED, used=False),
    Key("node", "ssh.port", "endpoint", "", _IGNORED, used=False),
    Key("node", "ssh.authorized_keys_file", "path", "", _IGNORED, used=False),
    Key("node", "reveal-IP-address", "boolean", "true", _IGNORED + " shoal has no Tor/I2P mode.",
        used=False),
    Key("node", "tempdir", "path", "", _IGNORED + " shoal spools uploads under the node directory.",
        used=False),
    Key("node", "http_pool_keepalive", "integer", "", _IGNORED, used=False),
    Key("node", "logdir", "path", "", _IGNORED + " shoal's log is always NODEDIR/logs/shoal.log.",
        used=False),
    Key("node", "force_foolscap", "boolean", "false", _IGNORED + " See [client] and [storage] force_foolscap.",
        used=False),
    # --- [client] ---------------------------------------------------------------------------
    Key("client", "introducer.furl", "FURL", "",
        "The introducer to use, named 'default' (deprecated: prefer private/introducers.yaml, "
        "which may name several). Must not conflict with a 'default' entry there."),
    Key("client", "helper.furl", "FURL", "",
        "Send immutable uploads through this upload helper while it is connected (a direct upload, "
        "with a log line, while it is not)."),
    Key("client", "storage.timeout", "integer", "",
        "Seconds a query or a read of one storage server may take before the client gives up on that "
        "server (unset: 30; a write or close gets twice as long); 1 to 3600.",
        "shoal's own: Tahoe refuses the key."),
    Key("client", "mutable.key_pool", "integer", "2",
        "RSA-2048 signing keys made ahead in the background, so that creating a mutable file or "
        "directory need not wait for one (a key costs 40-100 ms of CPU to make and a few KB of "
        "memory to keep); 0 to 1024. A gateway that creates mutable files in bursts (a Blockstack "
        "driver's new ids) keeps about a burst's worth.",
        "shoal's own: Tahoe makes every key on demand."),
    Key("client", "key_generator.furl", "FURL", "", _IGNORED, used=False),
    Key("client", "mutable.format", "text", "", _IGNORED + " Clients choose per request (format=MDMF).",
        "Tahoe makes new mutable files and directories MDMF when this says MDMF, else SDMF.", used=False),
    Key("client", "peers.preferred", "list", "", _IGNORED, used=False),
    Key("client", "shares.needed", "integer", "3", "k: shares needed to rebuild a file (1..256)."),
    Key("client", "shares.happy", "integer", "7",
        "Servers of happiness: an upload fails unless its shares are spread over this many servers."),
    Key("client", "shares.total", "integer", "10", "n: shares made of each file (k..256)."),
    Key("client", "shares._max_immutable_segment_size_for_testing", "integer", "1048576",
        "Largest immutable segment in bytes (for tests; leave unset)."),
    Key("client", "storage.plugins", "list", "", _IGNORED, used=False),
    Key("client", "force_foolscap", "boolean", "false",
        "Speak Foolscap to every storage server, even those announcing HTTPS storage NURLs."),
    # --- [storage] --------------------------------------------------------------------------
    Key("storage", "enabled", "boolean", "true", "Run a storage server in this node."),
    Key("storage", "storage_dir", "path", "storage",
        "Where shares live, relative to the node directory."),
    Key("storage", "reserved_space", "size", "0",
        "Refuse new shares when the disk has less than this free (1G = 10**9, 1GiB = 2**30).",
        "create-node writes 1G in both."),
    Key("storage", "max_space", "size", "",
        "Refuse new shares once shares use this much (unset: no limit beyond reserved_space).",
        "shoal's own: Tahoe refuses the key."),
    Key("storage", "readonly", "boolean", "false", "Serve existing shares, accept no new ones."),
    Key("storage", "expire.enabled", "boolean", "false",
        "Let the lease crawler delete shares whose leases have all expired."),
    Key("storage", "expire.mode", "text", "age", "'age' or 'cutoff-date'."),
    Key("storage", "expire.override_lease_duration", "duration", "",
        "In age mode, treat every lease as lasting this long (e.g. '60 days') instead of its own term."),
    Key("storage", "expire.cutoff_date", "date", "",
        "In cutoff-date mode, leases renewed before this UTC date (YYYY-MM-DD) have expired; "
        "required in that mode."),
    Key("storage", "expire.immutable", "boolean", "true", "Expire immutable shares."),
    Key("storage", "expire.mutable", "boolean", "true", "Expire mutable shares."),
    Key("storage", "force_foolscap", "boolean", "false",
        "Serve Foolscap only: no HTTPS storage protocol and no NURLs in the announcement."),
    Key("storage", "scrub.interval", "duration", "7 days",
        "How often the scrubber may start a pass that checks every share against its hashes.",
        "shoal's own (Tahoe has no scrubber): Tahoe refuses the key."),
    Key("storage", "min_body_rate", "size", "1KiB",
        "Bytes per second a request body on the storage HTTPS port must deliver in every body_rate_window "
        "(shoal's own key); 0 turns it off."),
    Key("storage", "body_rate_window", "integer", "30",
        "Seconds of each window in which [storage]min_body_rate is checked (shoal's own key)."),
    Key("storage", "debug_discard", "boolean", "false", _IGNORED + " (Tahoe's testing switch.)", used=False),
    Key("storage", "anonymous", "boolean", "true", _IGNORED, used=False),
    Key("storage", "plugins", "list", "", _IGNORED, used=False),
    Key("storage", "grid_management", "boolean", "false", _IGNORED, used=False),
    # --- [helper], [sftpd] ------------------------------------------------------------------
    Key("helper", "enabled", "boolean", "false",
        "Run an upload helper in this node (its FURL in private/helper.furl, mode 0600); needs "
        "tub.port and tub.location."),
    Key("sftpd", "enabled", "boolean", "false",
        "Serve SFTP (docs/sftp.md): each account of accounts.file sees its root directory."),
    Key("sftpd", "port", "endpoint", "",
        "Where SFTP listens, as tcp:PORT[:interface=ADDR] (required when enabled; other endpoint "
        "types are a config error)."),
    Key("sftpd", "host_pubkey_file", "path", "",
        "The SSH host public key (optional; checked against the private key). Relative to the node "
        "directory."),
    Key("sftpd", "host_privkey_file", "path", "",
        "The unencrypted SSH host private key (required when enabled). Relative to the node directory."),
    Key("sftpd", "accounts.url", "URL", "",
        "Tahoe's account server: not supported, a config error when set (use accounts.file)."),
    Key("sftpd", "accounts.file", "path", "",
        "Tahoe's accounts file: one 'USER KEYTYPE KEY ROOTCAP' line per account (required when enabled). Password lines are refused, as Tahoe 1.20 refuses them."),
    # --- [checker] (shoal's own; shoal.checker.job checks its values) -----------------------
    Key("checker", "enabled", "boolean", "false",
        "Run the checker job: rounds over `roots` checking, verifying, repairing and renewing leases.",
        "shoal's own: Tahoe refuses [checker]; its operators run `tahoe deep-check --repair "
        "--add-lease` from cron."),
    Key("checker", "roots", "list", "",
        "Comma-separated directory caps or alias: names (from private/aliases) to walk; required "
        "when enabled."),
    Key("checker", "interval", "duration", "7d",
        "A round starts at most this often (s, m, h, d suffixes)."),
    Key("checker", "verify-fraction", "number", "0",
        "Share of files verified (every block read) per round, 0 to 1; the rest are checked."),
    Key("checker", "repair", "boolean", "true", "Repair what a round finds unhealthy."),
    Key("checker", "add-lease", "boolean", "true", "Renew leases on everything a round visits."),
    Key("checker", "pause", "duration", "0.05", "Seconds between objects, so the job stays in the background."),
    # --- [blobs] (shoal's own; see docs/blobs.md) -------------------------------------------
    Key("blobs", "enabled", "boolean", "false", "Run the Soledad-compatible blob service."),
    Key("blobs", "port", "endpoint", "tcp:2424:interface=127.0.0.1", "Where the blob service listens."),
    Key("blobs", "tokens_file", "path", "private/blobs.tokens",
        "File of user tokens (secret: kept mode 0600), relative to the node directory."),
    Key("blobs", "quota", "size", "200MiB", "Bytes each user may store."),
    Key("blobs", "max_objects", "integer", "50000", "Live blobs each user may have, over all namespaces."),
    Key("blobs", "min_body_rate", "size", "1KiB",
        "Bytes per second a request body on the blob port must deliver in every body_rate_window; "
        "0 turns it off."),
    Key("blobs", "body_rate_window", "integer", "30",
        "Seconds of each window in which [blobs]min_body_rate is checked."),
    Key("blobs", "root_cap", "text", "",
        "Directory write cap holding every user's blobs (secret); unset: made on first start and "
        "kept in private/blobs.rootcap."),
    Key("blobs", "index", "path", "private/blobs/index.sqlite",
        "The local index of blobs (rebuilt from the grid when lost)."),
    # --- [logging] (shoal's own) ------------------------------------------------------------
    Key("logging", "level", "text", "INFO",
        "Least severe level written to NODEDIR/logs/shoal.log: DEBUG, INFO, WARNING or ERROR.",
        "shoal's own: Tahoe refuses [logging]; it writes Twisted's text log to logs/twistd.log "
        "and Foolscap's incident files."),
    Key("logging", "max_bytes", "size", "10MiB", "Rotate logs/shoal.log when it reaches this size."),
    Key("logging", "backups", "integer", "5", "Rotated files kept (shoal.log.1, the newest, .. shoal.log.N); 1 to 1000."),
)

# (section, key in lower case, as configparser stores names) -> Key
KEYS: Mapping[tuple[str, str], Key] = {(k.section, k.name.lower()): k for k in _ENTRIES}
assert len(KEYS) == len(_ENTRIES), "a key is registered twice"

# Sections whose keys are not checked (Tahoe's connection handlers and grid manager lists).
OPEN_SECTIONS: Mapping[str, str] = {
    "connections": "Tahoe's connection handlers (tcp = tor ...); accepted, ignored: shoal connects directly.",
    "tor": "Tahoe's Tor settings; accepted, ignored.",
    "i2p": "Tahoe's I2P settings; accepted, ignored.",
    "grid_managers": "Tahoe 1.20's grid manager public keys; accepted, ignored.",
    "grid_manager_certificates": "Tahoe 1.20's grid manager certificates; accepted, ignored.",
}
OPEN_PREFIXES = ("storageserver.plugins.", "storageclient.plugins.")
# Sections that shoal's own modules validate as a whole (their keys are registered above).
MODULE_SECTIONS = frozenset({"checker", "blobs"})
# Sections Tahoe-LAFS 1.20 does not know (it refuses a tahoe.cfg that has them).
SHOAL_SECTIONS = frozenset({"checker", "blobs", "logging"})

SECTION_ORDER = ("node", "client", "storage", "helper", "sftpd", "checker", "blobs", "logging")


def lookup(section: str, key: str) -> Key:
    """The registered key (names compare as configparser stores them: lower case)."""
    try:
        return KEYS[(section, key.lower())]
    except KeyError:
        raise UnregisteredKeyError(
            f"[{section}]{key} is read by the code but not registered in shoal.node.config_keys.KEYS "
            "(add a Key there and run `make config-doc`)") from None


def sections() -> frozenset[str]:
    return frozenset(section for section, _ in KEYS)


# --- the reference document -------------------------------------------------------------------
BEGIN = "<!-- BEGIN KEYS: generated from shoal.node.config_keys by `make config-doc`; do not edit -->"
END = "<!-- END KEYS -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(keys: Iterable[Key] = _ENTRIES) -> str:
    """The generated part of docs/configuration.md: one table per section, one row per key."""
    by_section: dict[str, list[Key]] = {}
    for k in keys:
        by_section.setdefault(k.section, []).append(k)
    order = [s for s in SECTION_ORDER if s in by_section] + sorted(set(by_section) - set(SECTION_ORDER))
    out = [BEGIN, ""]
    for section in order:
        out += [f"### [{section}]", "", "| key | type | default | meaning | Tahoe 1.20 |",
                "|---|---|---|---|---|"]
        for k in by_section[section]:
            default = f"`{k.default}`" if k.default else "(unset)"
            if k.tahoe:
                tahoe = k.tahoe
            elif k.section in SHOAL_SECTIONS:
                tahoe = f"shoal's own: Tahoe refuses [{k.section}]."
            else:
                tahoe = "same" if k.used else "Tahoe acts on it"
            out.append(f"| `{k.name}` | {k.type} | {_cell(default)} | {_cell(k.meaning)} | {_cell(tahoe)} |")
        out.append("")
    out += ["### Sections that take any key", "", "| section | meaning |", "|---|---|"]
    for section, meaning in OPEN_SECTIONS.items():
        out.append(f"| `[{section}]` | {_cell(meaning)} |")
    prefixes = ", ".join(f"`[{p}NAME]`" for p in OPEN_PREFIXES)
    out.append(f"| {prefixes} | Tahoe's storage plugin settings; accepted, ignored. |")
    out += ["", END]
    return "\n".join(out)


def splice(document: str, block: str) -> str:
    """`document` with the text between its BEGIN and END markers replaced by `block`."""
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + block + document[end:]


def main(argv: list[str]) -> int:
    """`--write PATH` rewrites the generated block of PATH in place; otherwise print the block."""
    if len(argv) == 2 and argv[0] == "--write":
        with open(argv[1], encoding="utf-8") as f:
            text = f.read()
        with open(argv[1], "w", encoding="utf-8") as f:
            f.write(splice(text, render()))
        return 0
    print(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
