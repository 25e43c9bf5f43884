"""Placement and durability of a grid at scale: a simulation, no network.

Four parts, each printed (and charted into docs/durability/ with --charts,
which needs matplotlib, not among shoal's dependencies: pip install matplotlib):

1. The real ring. shoal's own permuted ring (shoal.placement.permute) places
   files on SERVERS servers: each file's shares go to the first n servers of
   its permuted order. Measured: shares per server against the binomial a
   uniformly random n-subset per file would give (variance ratio ~1 means
   the ring is as even as chance), and how many servers two files share.
2. Fill skew. 10^6 files on 10,000 servers of mixed capacity (1, 4, 8, 16
   TB), filled to 95%: the ring (which ignores capacity; a full server is
   skipped, the next one in the ring takes the share, as the uploader does)
   against placement weighted by capacity (not what shoal or Tahoe does;
   for comparison). Printed: the fill of each capacity class and the share
   of servers full, at 25/50/80/95% overall fill.
3. Durability. A file is k-of-n; each server fails at rate lam per year
   (independently, exponential lifetimes); a file with fewer than n shares
   is repaired back to n at rate mu = 1 / T_repair, where T_repair is half
   the checker interval (detection) plus the rebuild time of one failed
   server's data, (k + 1) * D / B (download k shares, upload one, for each
   of the D bytes it held, at a grid-wide repair budget of B bytes/s:
   the ring spreads a server's files over every other server, so repair
   parallelises). A file is lost when fewer than k shares remain. This is a
   Markov chain on the number of live shares; its one-year absorption
   probability is computed exactly by uniformization. Expected files lost
   per year = files * P(loss).
4. A check of the model: a Monte Carlo run at small scale with the real
   ring (servers fail, are replaced by new empty ones that join the ring,
   files are repaired onto the next servers in their permuted order) and
   rates high enough for losses to happen; observed losses against the
   chain's prediction.

    python bench/durability.py [--servers 10000] [--files 1000000] [--charts]
"""

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

from shoal.placement.permute import permuted_servers

YEAR = 365.25 * 86400
TB = 10**12
CAPACITY_MIX = ((1 * TB, 0.4), (4 * TB, 0.3), (8 * TB, 0.2), (16 * TB, 0.1))  # (capacity, share of servers)
CODES = ((1, 3), (2, 5), (3, 10), (5, 15), (10, 20), (6, 9))
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "durability")


# -- 1. the real ring ------------------------------------------------------------------

def make_servers(count: int, rng: random.Random) -> list[tuple[bytes, bytes]]:
    """(server id, permutation seed) pairs as announcements give them."""
    return [(b"v0-%052d" % rng.getrandbits(160), rng.randbytes(32)) for _ in range(count)]


def ring_shares(servers: Sequence[tuple[bytes, bytes]], files: int, n: int, rng: random.Random) -> list[list[bytes]]:
    """Each file's n share holders: the first n servers of its permuted order."""
    return [permuted_servers(rng.randbytes(16), servers)[:n] for _ in range(files)]


def ring_evenness(servers: int, files: int, n: int, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    pool = make_servers(servers, rng)
    placed = ring_shares(pool, files, n, rng)
    counts = {sid: 0 for sid, _ in pool}
    for holders in placed:
        for sid in holders:
            counts[sid] += 1
    values = list(counts.values())
    p = n / servers
    expected_var = files * p * (1 - p)
    overlaps = [len(set(placed[i]) & set(placed[i + 1])) for i in range(0, len(placed) - 1, 2)]
    return {
        "mean shares per server": statistics.fmean(values),
        "variance / binomial variance": statistics.pvariance(values) / expected_var,
        "max / mean": max(values) / statistics.fmean(values),
        "servers two files share (mean)": statistics.fmean(overlaps),
        "... for random n-subsets": n * n / servers,
    }


# -- 2. fill skew ----------------------------------------------------------------------

def capacities(servers: int, rng: random.Random) -> list[int]:
    out = []
    for cap, frac in CAPACITY_MIX:
        out += [cap] * round(servers * frac)
    out = (out + [CAPACITY_MIX[0][0]] * servers)[:servers]
    rng.shuffle(out)
    return out


def fill(servers: int, files: int, n: int, weighted: bool, marks: Sequence[float] = (0.25, 0.5, 0.8, 0.95),
         seed: int = 2) -> dict[float, dict[str, float]]:
    """Fill the grid to the last mark with equal files; snapshot each capacity class at every mark.

    The ring is, by part 1, a uniformly random n-subset per file among servers with room
    (a full server is skipped); `weighted` draws servers in proportion to capacity instead.
    """
    rng = random.Random(seed)
    cap = capacities(servers, rng)
    total = sum(cap)
    share = total * marks[-1] / (files * n)
    used = [0.0] * servers
    open_ = list(range(servers))  # servers with room
    where = {s: i for i, s in enumerate(open_)}
    cum: list[float] = []

    def rebuild() -> None:
        cum.clear()
        acc = 0.0
        for s in open_:
            acc += cap[s]
            cum.append(acc)

    if weighted:
        rebuild()
    snapshots: dict[float, dict[str, float]] = {}
    mark_iter = iter(marks)
    mark = next(mark_iter)
    stored = 0.0
    for _ in range(files):
        if len(open_) < n:
            break
        if weighted:
            chosen: set[int] = set()
            while len(chosen) < n:
                chosen.update(rng.choices(open_, cum_weights=cum, k=n - len(chosen)))
            picks = list(chosen)
        else:
            picks = rng.sample(open_, n)
        filled = False
        for s in picks:
            used[s] += share
            if used[s] + share > cap[s]:  # no room for another share: out of the ring
                i = where.pop(s)
                last = open_.pop()
                if last != s:
                    open_[i] = last
                    where[last] = i
                filled = True
        if filled and weighted:
            rebuild()
        stored += share * n
        if stored >= mark * total:
            snapshots[mark] = _fill_snapshot(cap, used, len(open_))
            mark = next(mark_iter, 2.0)
    return snapshots


def _fill_snapshot(cap: list[int], used: list[float], open_count: int) -> dict[str, float]:
    out: dict[str, float] = {"servers full": 1 - open_count / len(cap)}
    for c, _ in CAPACITY_MIX:
        fills = sorted(u / cc for u, cc in zip(used, cap, strict=True) if cc == c)
        out[f"{c // TB} TB fill p50"] = fills[len(fills) // 2]
    out["fill p1"], out["fill p99"] = (sorted(u / c for u, c in zip(used, cap, strict=True))[int(len(cap) * q)]
                                       for q in (0.01, 0.99))
    return out


# -- 3. durability: the Markov chain ---------------------------------------------------

def loss_probability(k: int, n: int, lam: float, mu: float, years: float = 1.0) -> float:
    """P(a k-of-n file starting with n shares is lost within `years`).

    States: live shares i = n..k, plus lost (i < k). i -> i-1 at rate i*lam; i -> n at rate mu
    for k <= i < n. Uniformization with rate L = n*lam + mu: P(lost by t) = sum_j Poisson(j; L t)
    * a_j, where a_j is the probability that j steps of the discrete chain reached lost.
    """
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, not {k}-of-{n}")
    rate = n * lam + mu
    lt = rate * years
    states = n - k + 1  # index idx holds n - idx live shares
    v = [1.0] + [0.0] * (states - 1)
    absorbed = 0.0  # a_j
    total = 0.0
    log_weight = -lt  # log Poisson(j; lt)
    last = int(lt + 12 * math.sqrt(lt) + 60)
    cdf = 0.0
    for j in range(last + 1):
        w = math.exp(log_weight)
        total += w * absorbed
        cdf += w
        nv = [0.0] * states
        for idx, p in enumerate(v):
            if p:
                i = n - idx
                fail = i * lam / rate
                repair = mu / rate if idx else 0.0
                nv[idx] += p * (1.0 - fail - repair)
                nv[0] += p * repair
                if idx + 1 < states:
                    nv[idx + 1] += p * fail
                else:
                    absorbed += p * fail
        v = nv
        log_weight += math.log(lt) - math.log(j + 1)
    return min(1.0, total + max(0.0, 1.0 - cdf) * absorbed)  # beyond the last step: at least a_last


def repair_traffic(k: int, lam: float, servers: int, stored_per_server: float) -> float:
    """Mean repair traffic (bytes/s) the grid must sustain: every failed server's data, k + 1 times."""
    return lam * servers * (k + 1) * stored_per_server / YEAR


def repair_time(k: int, stored_per_server: float, budget: float, checker_interval: float,
                traffic: float = 0.0) -> float:
    """Seconds from a server failing to its files being whole again (mean): detection, then the
    rebuild, stretched by 1 / (1 - rho) for the queue of other failures' rebuilds (rho =
    traffic / budget; an M/M/1 approximation); infinite when the budget cannot keep up."""
    if budget <= traffic:
        return math.inf
    return checker_interval / 2 + (k + 1) * stored_per_server / budget / (1 - traffic / budget)


def budget_for(target: float, k: int, n: int, lam: float, stored_per_server: float,
               checker_interval: float, traffic: float) -> float | None:
    """The smallest grid-wide repair budget (bytes/s) that keeps P(loss per year) <= target, or None."""
    floor = loss_probability(k, n, lam, YEAR / (checker_interval / 2))  # infinitely fast rebuild
    if floor > target:
        return None
    lo, hi = traffic, max(traffic, 1e3) * 1e6
    for _ in range(80):
        mid = (lo + hi) / 2
        t = repair_time(k, stored_per_server, mid, checker_interval, traffic)
        if t < math.inf and loss_probability(k, n, lam, YEAR / t) <= target:
            hi = mid
        else:
            lo = mid
    return hi


# -- 4. the check: Monte Carlo with the real ring --------------------------------------

def monte_carlo(servers: int, files: int, k: int, n: int, lam: float, mu: float, years: float,
                seed: int = 3) -> tuple[int, float]:
    """(files lost, the chain's expected number) over `years`, real ring placement and repair."""
    rng = random.Random(seed)
    pool = make_servers(servers, rng)
    seeds = dict(pool)
    sis = [rng.randbytes(16) for _ in range(files)]
    holders: list[set[bytes]] = [set(permuted_servers(si, pool)[:n]) for si in sis]
    on: dict[bytes, set[int]] = {sid: set() for sid, _ in pool}
    for f, hs in enumerate(holders):
        for sid in hs:
            on[sid].add(f)
    lost: set[int] = set()
    pending: dict[int, float] = {}  # file -> repair time
    now = 0.0
    end = years
    while True:
        next_fail = now + rng.expovariate(lam * len(pool))
        due = min(pending.items(), key=lambda kv: kv[1], default=(None, math.inf))
        if min(next_fail, due[1]) > end:
            break
        if due[1] <= next_fail:
            f, now = due[0], due[1]
            assert f is not None
            del pending[f]
            order = permuted_servers(sis[f], pool)
            for sid in order:  # back to n shares: the next servers of its ring that lack one
                if len(holders[f]) >= n:
                    break
                if sid not in holders[f]:
                    holders[f].add(sid)
                    on[sid].add(f)
            continue
        now = next_fail
        victim = rng.randrange(len(pool))
        sid, _ = pool[victim]
        for f in on.pop(sid):
            holders[f].discard(sid)
            if f in lost:
                continue
            if len(holders[f]) < k:
                lost.add(f)
                pending.pop(f, None)
            elif f not in pending:
                pending[f] = now + rng.expovariate(mu)
        del seeds[sid]
        fresh = (b"v0-%052d" % rng.getrandbits(160), rng.randbytes(32))  # a new server joins
        pool[victim] = fresh
        seeds[fresh[0]] = fresh[1]
        on[fresh[0]] = set()
    expected = files * loss_probability(k, n, lam, mu, years)
    return len(lost), expected


# -- the report ------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--ring-files", type=int, default=2_000, help="files placed by the real ring in part 1")
    ap.add_argument("--afr", type=float, default=0.05, help="annual server failure rate")
    ap.add_argument("--checker-days", type=float, default=7, help="how often the checker job passes")
    ap.add_argument("--budget-mbs", type=float, default=1000, help="grid-wide repair budget, MB/s")
    ap.add_argument("--target", type=float, default=1e-9, help="P(file lost per year) to hold")
    ap.add_argument("--charts", action="store_true", help="write PNG charts into docs/durability/")
    ap.add_argument("--parts", default="1234", help="which parts to run (1: ring, 2: fill, 3: loss, 4: check)")
    args = ap.parse_args()
    t0 = time.monotonic()
    lam = -math.log(1 - args.afr)  # rate whose one-year failure probability is the AFR
    interval = args.checker_days * 86400
    mean_cap = sum(c * f for c, f in CAPACITY_MIX)

    skew: dict = {}
    table: list = []
    if "1" in args.parts:
        part_ring(args)
    if "2" in args.parts:
        skew = part_fill(args)
    if "3" in args.parts:
        table = part_loss(args, lam, interval, mean_cap)
    if "4" in args.parts:
        part_check()
    print(f"\n({time.monotonic() - t0:.0f} s)")
    if args.charts:
        charts(skew, table, lam, args)


def part_ring(args: argparse.Namespace) -> None:
    print(f"1. shoal's permuted ring: {args.ring_files} files, 3-of-10, on {args.servers // 10} "
          f"and {args.servers} servers")
    for servers in (args.servers // 10, args.servers):
        ev = ring_evenness(servers, args.ring_files if servers == args.servers else args.ring_files * 5, 10)
        print(f"   {servers:>6} servers: " + ", ".join(f"{k} {v:.3f}" for k, v in ev.items()))



def part_fill(args: argparse.Namespace) -> dict:
    print(f"\n2. fill skew: {args.files:,} files x 10 shares on {args.servers:,} servers "
          f"(capacities {', '.join(f'{c // TB} TB x {f:.0%}' for c, f in CAPACITY_MIX)})")
    skew = {}
    for weighted in (False, True):
        name = "capacity-weighted" if weighted else "permuted ring"
        skew[name] = fill(args.servers, args.files, 10, weighted)
        for mark, snap in skew[name].items():
            print(f"   {name:<18} at {mark:>4.0%}: " + ", ".join(f"{k} {v:.2f}" for k, v in snap.items()))
    return skew


def part_loss(args: argparse.Namespace, lam: float, interval: float, mean_cap: float) -> list:
    stored = 0.5 * mean_cap  # bytes per server at 50% overall fill
    budget = args.budget_mbs * 1e6
    print(f"\n3. durability: AFR {args.afr:.0%} (lam {lam:.4f}/year), checker every {args.checker_days:g} days, "
          f"{stored / TB:.1f} TB per server, repair budget {args.budget_mbs:g} MB/s grid-wide")
    table = []
    for k, n in CODES:
        traffic = repair_traffic(k, lam, args.servers, stored)
        t = repair_time(k, stored, budget, interval, traffic)
        p = loss_probability(k, n, lam, YEAR / t if t < math.inf else 0.0)
        need = budget_for(args.target, k, n, lam, stored, interval, traffic)
        table.append((k, n, t, p, need, traffic))
        need_text = (f"{need / 1e6:9.4g} MB/s ({need / traffic:.2f}x the mean)" if need
                     else "unreachable: the checker interval alone is too slow")
        print(f"   {k:>2}-of-{n:<2} expansion {n / k:4.1f}x  repair {t / 86400:6.1f} d  P(loss)/yr {p:9.2e}  "
              f"files lost/yr {p * args.files:9.2e}  budget for {args.target:g}: {need_text}  "
              f"mean repair traffic {traffic / 1e6:7.1f} MB/s")
    return table


def part_check() -> None:
    print("\n4. the model against a Monte Carlo run with the real ring (200 servers, 3,000 files, "
          "AFR 60%, repair mean 30 days, 5 years)")
    mc_lam, mc_mu = -math.log(1 - 0.6), 365.25 / 30
    for k, n in ((1, 2), (2, 3), (2, 4)):
        observed, expected = monte_carlo(200, 3_000, k, n, mc_lam, mc_mu, 5.0)
        print(f"   {k}-of-{n}: lost {observed} files, the chain expects {expected:.1f}")


def charts(skew: dict, table: list, lam: float, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(DOCS, exist_ok=True)
    if skew:
        fill_chart(plt, skew, args)
    loss_chart(plt, lam, args)
    print(f"charts written to {os.path.normpath(DOCS)}")


def fill_chart(plt: Any, skew: dict, args: argparse.Namespace) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, style in (("permuted ring", "-"), ("capacity-weighted", "--")):
        marks = sorted(skew[name])
        for c, _ in CAPACITY_MIX:
            ax.plot([m * 100 for m in marks], [skew[name][m][f"{c // TB} TB fill p50"] * 100 for m in marks],
                    style, marker="o", label=f"{name}, {c // TB} TB")
    ax.set_xlabel("grid fill (%)")
    ax.set_ylabel("median server fill (%)")
    ax.set_title(f"Fill by server capacity, {args.servers:,} servers")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(DOCS, "fill.png"), dpi=110)


def loss_chart(plt: Any, lam: float, args: argparse.Namespace) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    days = [0.5, 1, 2, 4, 7, 14, 30, 60]
    for k, n in CODES:
        ax.semilogy(days, [max(loss_probability(k, n, lam, 365.25 / d), 1e-30) for d in days], marker="o",
                    label=f"{k}-of-{n}")
    ax.set_xlabel("mean repair time (days)")
    ax.set_ylabel("P(file lost) per year")
    ax.set_title(f"Annual file loss, server AFR {args.afr:.0%}")
    ax.axhline(args.target, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(DOCS, "loss.png"), dpi=110)


if __name__ == "__main__":
    main()

