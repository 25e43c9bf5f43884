"""Servers of happiness (Tahoe-LAFS 1.20) and the immutable share placement planner.

**The measure.** Tahoe 1.20 judges an immutable upload by the size of a
maximum matching in the bipartite graph whose vertices are servers and share
numbers, with an edge wherever a server holds (or will hold) a share
(docs/specifications/servers-of-happiness.rst, util/happinessutil.py):
"happiness" is the number of servers that each hold a share no other server
of the set is counted for, so any k of them can rebuild the file. The upload
fails when happiness < shares.happy. `servers_of_happiness` computes exactly
that number from a {share: servers} map.

**The planner.** Given the candidate servers in permuted order, which of them
may take new shares, what each already holds and what it has already agreed
to take (allocated bucket writers), `plan_placement` chooses a home for every
share so that

1. happiness is as large as it can be with these servers (a maximum matching
   over held, allocated and possible new edges);
2. among such layouts, as few new shares as possible are uploaded: a share a
   server already holds is relied upon before an allocated writer is used,
   and an allocated writer before a new allocation is asked for;
3. among those, earlier servers in the permuted order win, and new shares go
   in order: the lowest unplaced share number to the earliest free server;
4. shares the matching cannot give a server of their own (fewer usable
   servers than shares) are relied upon where they already exist, kept where
   they were already allocated, and otherwise spread over the writable
   servers, least-loaded first: no server gets a second share before every
   usable server has one.

Steps 1-3 are one minimum-cost maximum flow (source -> share -> server ->
sink, with new edges routed through a single hub so the graph stays small);
Tahoe 1.20 (immutable/happiness_upload.py) instead runs three successive
maximum matchings (read-only holders, other holders, then fresh servers)
with no preference for earlier servers (it works on sets); the flow gives
at least the same happiness and never uploads a share it could rely on.

`Planner` is the placement state machine the uploader drives: it records
what each server answered (allocate_buckets, get_buckets, errors) and
re-plans; `requests()` names the allocate_buckets calls still to send.
A server that refuses any share it is asked for is full: it is never asked
for a new share again (it keeps the writers it gave). A server that errors
is forgotten, holdings included. Limitation (shared with Tahoe): when a
nearly full server took share X but the plan, knowing more, would rather
it held share Y, X is not traded for Y.
Pure: no I/O, no clocks, no threads.
"""

import heapq
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

import attrs

S = TypeVar("S", bound=Hashable)


# --- the measure ---------------------------------------------------------------


def maximum_matching(edges: Mapping[int, Sequence[S]]) -> dict[int, S]:
    """A maximum matching {share: server} of the bipartite graph `edges`
    ({share: servers that hold it}); servers earlier in each list are tried first.

    Kuhn's augmenting paths (iterative), O(shares × edges).
    """
    owner: dict[S, int] = {}  # server -> share matched to it
    match: dict[int, S] = {}
    for root in sorted(edges):
        if not edges[root]:
            continue
        # depth-first search for an augmenting path from `root`; at each
        # share a free server is taken before any matched one is displaced
        seen: set[S] = set()
        stack: list[tuple[int, int]] = [(root, 0)]  # (share, next edge index)
        via: list[S] = []  # the server chosen at each depth
        found = False
        while stack:
            share, i = stack[-1]
            servers = edges[share]
            if i == 0:
                free = next((s for s in servers if s not in owner and s not in seen), None)
                if free is not None:
                    via.append(free)
                    found = True
                    break
            if i >= len(servers):
                stack.pop()
                if via:
                    via.pop()
                continue
            stack[-1] = (share, i + 1)
            server = servers[i]
            if server in seen or server not in owner:
                continue
            seen.add(server)
            via.append(server)
            stack.append((owner[server], 0))
        if not found:
            continue
        # flip the path: stack[d] share takes via[d]
        for depth, (share, _) in enumerate(stack):
            server = via[depth]
            owner[server] = share
            match[share] = server
    return match


def servers_of_happiness(sharemap: Mapping[int, Collection[S]]) -> int:
    """Tahoe 1.20's servers-of-happiness of {share: servers holding it}: the
    size of a maximum share-to-server matching."""
    return len(maximum_matching({sh: list(servers) for sh, servers in sharemap.items()}))


def happiness_of(servermap: Mapping[S, Collection[int]]) -> int:
    """The same measure from {server: shares it holds}."""
    sharemap: dict[int, list[S]] = {}
    for server, shares in servermap.items():
        for sh in shares:
            sharemap.setdefault(sh, []).append(server)
    return servers_of_happiness(sharemap)


# --- minimum-cost maximum flow (unit capacities) ---------------------------------


class _Flow:
    """A flow network with integer capacities and non-negative costs."""

    def __init__(self, size: int) -> None:
        self.adj: list[list[int]] = [[] for _ in range(size)]
        self.to: list[int] = []
        self.cap: list[int] = []
        self.cost: list[int] = []

    def add(self, u: int, v: int, cap: int, cost: int) -> int:
        e = len(self.to)
        self.adj[u].append(e)
        self.to.append(v)
        self.cap.append(cap)
        self.cost.append(cost)
        self.adj[v].append(e + 1)
        self.to.append(u)
        self.cap.append(0)
        self.cost.append(-cost)
        return e

    def run(self, source: int, sink: int) -> int:
        """Successive shortest paths (Dijkstra on reduced costs); returns the flow."""
        size = len(self.adj)
        potential = [0] * size
        flow = 0
        inf = float("inf")
        while True:
            dist: list[float] = [inf] * size
            prev_edge = [-1] * size
            dist[source] = 0
            heap: list[tuple[float, int]] = [(0, source)]
            while heap:
                d, u = heapq.heappop(heap)
                if d > dist[u]:
                    continue
                for e in self.adj[u]:
                    if self.cap[e] <= 0:
                        continue
                    v = self.to[e]
                    nd = d + self.cost[e] + potential[u] - potential[v]
                    if nd < dist[v]:
                        dist[v] = nd
                        prev_edge[v] = e
                        heapq.heappush(heap, (nd, v))
            if dist[sink] == inf:
                return flow
            for v in range(size):
                if dist[v] < inf:
                    potential[v] += int(dist[v])
            # every source edge has capacity 1: push one unit
            v = sink
            while v != source:
                e = prev_edge[v]
                self.cap[e] -= 1
                self.cap[e ^ 1] += 1
                v = self.to[e ^ 1]
            flow += 1


# --- the planner ----------------------------------------------------------------

HELD, ALLOCATED, NEW = 0, 1, 2  # the cost classes of an edge


@attrs.frozen
class Plan(Generic[S]):
    """Where every share lives once the upload is done, and what is left to ask.

    `homes` maps each placed share to the one server relied upon for it:
    a holder (`relied`), an allocated writer (`keep`) or a new allocation to
    ask for (`new`). Allocated writers not in `keep` are not needed.
    """

    homes: Mapping[int, S]
    relied: Mapping[S, frozenset[int]]
    keep: Mapping[S, frozenset[int]]
    new: Mapping[S, frozenset[int]]
    happiness: int
    unplaced: frozenset[int]


def _group(pairs: Iterable[tuple[int, S]]) -> dict[S, frozenset[int]]:
    out: dict[S, set[int]] = {}
    for sh, server in pairs:
        out.setdefault(server, set()).add(sh)
    return {s: frozenset(v) for s, v in out.items()}


def plan_placement(
    servers: Sequence[S],
    n: int,
    *,
    writable: Collection[S],
    held: Mapping[S, Collection[int]] | None = None,
    allocated: Mapping[S, Collection[int]] | None = None,
) -> Plan[S]:
    """Choose a home for each of shares 0..n-1 (see the module docstring).

    servers: the candidates in permuted order (earlier is preferred);
    writable: those that may be asked for new shares;
    held: shares each server already stores; allocated: shares each server
    has already given us a bucket writer for. Shares outside 0..n-1 and
    servers not in `servers` are ignored.
    """
    held = held or {}
    allocated = allocated or {}
    rank = {s: i for i, s in enumerate(servers)}
    if len(rank) != len(servers):
        raise ValueError("servers must be distinct")
    n_servers = len(servers)
    # cost = class weight (dominant) + server rank (tie-break)
    weight = n * n_servers + 1
    source, hub = 0, n + 1
    first_server = n + 2
    sink = first_server + n_servers
    flow = _Flow(sink + 1)
    for sh in range(n):
        flow.add(source, 1 + sh, 1, 0)
    edge_of: dict[int, tuple[int, S, int]] = {}  # flow edge -> (share, server, class)
    for cls, table in ((HELD, held), (ALLOCATED, allocated)):
        for server, shares in table.items():
            r = rank.get(server)
            if r is None:
                continue
            for sh in sorted(shares):
                if 0 <= sh < n:
                    e = flow.add(1 + sh, first_server + r, 1, cls * weight + r)
                    edge_of[e] = (sh, server, cls)
    hub_edges = [flow.add(1 + sh, hub, 1, 0) for sh in range(n)]
    server_hub_edges: dict[int, S] = {}
    for server in servers:
        if server in writable:
            r = rank[server]
            server_hub_edges[flow.add(hub, first_server + r, 1, NEW * weight + r)] = server
    for r in range(n_servers):
        flow.add(first_server + r, sink, 1, 0)
    happiness = flow.run(source, sink)

    homes: dict[int, S] = {}
    kind: dict[int, int] = {}
    for e, (sh, server, cls) in edge_of.items():
        if flow.cap[e] == 0:
            homes[sh] = server
            kind[sh] = cls
    hub_shares = sorted(sh for sh, e in enumerate(hub_edges) if flow.cap[e] == 0)
    hub_servers = sorted((s for e, s in server_hub_edges.items() if flow.cap[e] == 0), key=rank.__getitem__)
    for sh, server in zip(hub_shares, hub_servers, strict=True):
        homes[sh] = server
        kind[sh] = NEW

    # shares without a server of their own
    load = {s: 0 for s in servers}
    for server in homes.values():
        load[server] += 1

    def first_holder(table: Mapping[S, Collection[int]], sh: int) -> S | None:
        holders = [s for s, shares in table.items() if sh in shares and s in rank]
        return min(holders, key=rank.__getitem__) if holders else None

    unplaced = set()
    for sh in range(n):
        if sh in homes:
            continue
        for cls, table in ((HELD, held), (ALLOCATED, allocated)):
            holder = first_holder(table, sh)
            if holder is not None:
                homes[sh], kind[sh] = holder, cls
                load[holder] += 1
                break
        else:
            candidates = [s for s in servers if s in writable]
            if not candidates:
                unplaced.add(sh)
                continue
            target = min(candidates, key=lambda s: (load[s], rank[s]))
            homes[sh], kind[sh] = target, NEW
            load[target] += 1

    return Plan(
        homes=homes,
        relied=_group((sh, s) for sh, s in homes.items() if kind[sh] == HELD),
        keep=_group((sh, s) for sh, s in homes.items() if kind[sh] == ALLOCATED),
        new=_group((sh, s) for sh, s in homes.items() if kind[sh] == NEW),
        happiness=happiness,
        unplaced=frozenset(unplaced),
    )


# --- the state machine ------------------------------------------------------------


@attrs.define
class ServerAnswer(Generic[S]):
    """What one server said during placement (for results and error messages)."""

    server: S
    asked: set[int] = attrs.field(factory=set)  # shares we asked it to allocate
    already: set[int] = attrs.field(factory=set)  # shares it said it holds
    allocated: set[int] = attrs.field(factory=set)  # shares it gave writers for
    refused: set[int] = attrs.field(factory=set)  # asked, neither held nor allocated: full
    busy: set[int] = attrs.field(factory=set)  # refused though the server has room: being uploaded
    queried: bool = False  # answered get_buckets
    allocate_sent: bool = False
    readonly: bool = False  # too little space announced: never asked to allocate
    error: str | None = None
    full: bool = False  # the error was the server saying it has no room
    dropped: set[int] = attrs.field(factory=set)  # writers lost while pushing

    def describe(self) -> str:
        parts = []
        if self.allocated:
            parts.append(f"allocated {_shares(self.allocated)}")
        if self.already:
            parts.append(f"already had {_shares(self.already)}")
        if self.refused:
            parts.append(f"full: refused {_shares(self.refused)}")
        if self.busy:
            parts.append(f"busy: {_shares(self.busy)} being uploaded by another client")
        if self.readonly:
            parts.append("read-only or too little space")
        if self.dropped:
            parts.append(f"lost {_shares(self.dropped)} while writing")
        if self.error is not None:
            parts.append(f"error: {self.error}")
        if not parts:
            parts.append("no shares" if self.queried or self.allocate_sent else "not asked")
        return ", ".join(parts)


def _shares(shares: Collection[int]) -> str:
    return "sh" + ",".join(str(s) for s in sorted(shares))


class Planner(Generic[S]):
    """Placement for one upload: feed it answers, ask it what to send next.

    A server is *usable* until it errors; it may be asked for new shares while
    it is writable (enough announced space) and has refused nothing. Known
    holdings of a server that errored are forgotten (they cannot be relied
    upon); its writers are lost. The (server, share) pairs in `ignore` (shares
    known to be corrupt) are never counted as held: a server answering that
    it holds one has, for the planner, refused it.
    """

    def __init__(
        self,
        servers: Sequence[S],
        n: int,
        happy: int,
        writable: Collection[S],
        ignore: Collection[tuple[S, int]] = (),
    ) -> None:
        self.servers = list(servers)
        self.n = n
        self.happy = happy
        self.ignore = frozenset(ignore)
        self.answers: dict[S, ServerAnswer[S]] = {s: ServerAnswer(s) for s in self.servers}
        for s in self.servers:
            self.answers[s].readonly = s not in writable
        self._asked_pairs: set[tuple[S, int]] = set()
        self._plan: Plan[S] | None = None  # the plan for the current knowledge

    # -- knowledge --

    def _counts(self, server: S, shnum: int) -> bool:
        """Whether a share a server says it holds is one the plan may rely on."""
        return 0 <= shnum < self.n and (server, shnum) not in self.ignore

    def _usable(self, s: S) -> bool:
        return self.answers[s].error is None

    def writable(self) -> set[S]:
        return {
            s for s, a in self.answers.items()
            if a.error is None and not a.readonly and not a.refused and not a.busy
        }

    def held(self) -> dict[S, frozenset[int]]:
        return {s: frozenset(a.already) for s, a in self.answers.items() if self._usable(s) and a.already}

    def allocated(self) -> dict[S, frozenset[int]]:
        return {
            s: frozenset(a.allocated) for s, a in self.answers.items() if self._usable(s) and a.allocated
        }

    def existing_shares(self) -> set[int]:
        """Distinct shares found already on the grid."""
        return {sh for shares in self.held().values() for sh in shares}

    def happiness(self, extra: Mapping[S, Collection[int]] | None = None) -> int:
        """Happiness of what is held and allocated now (plus `extra`)."""
        servermap: dict[S, set[int]] = {}
        for table in (self.held(), self.allocated(), extra or {}):
            for s, shares in table.items():
                servermap.setdefault(s, set()).update(shares)
        return happiness_of(servermap)

    def plan(self) -> Plan[S]:
        if self._plan is None:
            self._plan = plan_placement(
                self.servers, self.n, writable=self.writable(), held=self.held(), allocated=self.allocated()
            )
        return self._plan

    def requests(self, plan: Plan[S] | None = None) -> dict[S, frozenset[int]]:
        """allocate_buckets calls still to send: new shares, and holders we rely
        upon that have not been sent one yet (asking renews their leases)."""
        plan = plan or self.plan()
        out: dict[S, set[int]] = {}
        for s, shares in plan.new.items():
            fresh = {sh for sh in shares if (s, sh) not in self._asked_pairs}
            if fresh:
                out.setdefault(s, set()).update(fresh)
        for s, shares in plan.relied.items():
            if not self.answers[s].allocate_sent:
                out.setdefault(s, set()).update(shares)
        return {s: frozenset(v) for s, v in out.items()}

    def unneeded(self, plan: Plan[S]) -> dict[S, frozenset[int]]:
        """Allocated writers the plan does not use (to abort)."""
        out = {}
        for s, shares in self.allocated().items():
            extra = shares - plan.keep.get(s, frozenset())
            if extra:
                out[s] = frozenset(extra)
        return out

    # -- events --

    def sent_allocate(self, server: S, shares: Collection[int]) -> None:
        a = self.answers[server]
        a.allocate_sent = True
        a.asked.update(shares)
        self._asked_pairs.update((server, sh) for sh in shares)

    def got_allocate(
        self, server: S, asked: Collection[int], already: Collection[int], allocated: Collection[int],
        busy: bool = False,
    ) -> None:
        """allocate_buckets(asked) answered: (shares held, shares given writers).
        The shares asked and neither held nor allocated were refused: for want
        of space, or, when `busy`, because another client is uploading them
        (the server said it has room). Either way the server gets no more."""
        self._plan = None
        a = self.answers[server]
        a.already.update(sh for sh in already if self._counts(server, sh))
        a.allocated.update(sh for sh in allocated if 0 <= sh < self.n)
        (a.busy if busy else a.refused).update(set(asked) - a.already - a.allocated)

    def got_buckets(self, server: S, shares: Collection[int]) -> None:
        """get_buckets answered with these shares."""
        self._plan = None
        a = self.answers[server]
        a.queried = True
        a.already.update(sh for sh in shares if self._counts(server, sh))

    def failed(self, server: S, error: str, full: bool = False) -> None:
        """A query failed; `full` when the server said it has no room."""
        self._plan = None
        self.answers[server].error = error
        self.answers[server].full = full

    def drop(self, server: S, shnum: int, error: str, full: bool = False) -> None:
        """A writer was lost while pushing (`full`: the server said it had no
        room): the share is not on that server."""
        self._plan = None
        a = self.answers[server]
        a.allocated.discard(shnum)
        a.dropped.add(shnum)
        if a.error is None:
            a.error = error
            a.full = full

    def abandon(self, server: S, shares: Collection[int]) -> None:
        """Writers we aborted because the plan did not need them."""
        self._plan = None
        self.answers[server].allocated.difference_update(shares)

    def describe(self, name: "Mapping[S, str] | None" = None) -> str:
        """One line per consulted server: what it answered."""
        lines = []
        for s in self.servers:
            label = name[s] if name is not None else str(s)
            lines.append(f"{label}: {self.answers[s].describe()}")
        return "; ".join(lines)
