"""KeyPool: keys made ahead in the CPU pool are handed out once each, and a
create with a warm pool uses one of them (on a real grid)."""


from twisted.internet import defer

from shoal.caps import parse_cap
from shoal.caps.mutable import mutable_caps_from_private_key
from shoal.mutable import MutableClient
from shoal.mutable.keypool import KeyPool
from shoal.testing.local_grid import LocalGrid
from shoal.testing.wait import wait_until
from tests.unit.mutable.vector_keys import fresh_key


def _wait(grid, pool, count, timeout=60.0):
    wait_until(lambda: grid.call(pool.ready) >= count, timeout, f"the pool to hold {count} keys")


def test_pool_fills_hands_out_distinct_keys_and_refills():
    made = []

    def generate():
        made.append(fresh_key())
        return made[-1]

    with LocalGrid(1) as grid:
        pool = KeyPool(2, generate)
        grid.call(pool.fill)
        _wait(grid, pool, 2)
        first = grid.call(lambda: defer.ensureDeferred(pool.get()))
        second = grid.call(lambda: defer.ensureDeferred(pool.get()))
        assert first is made[0] and second is made[1]
        _wait(grid, pool, 2)  # refilled behind the two it gave out
        assert len(made) == 4 and pool.served_from_pool == 2
        grid.call(lambda: defer.ensureDeferred(pool.stop()))


def test_empty_pool_generates_on_demand():
    with LocalGrid(1) as grid:
        pool = KeyPool(0, fresh_key)
        key = grid.call(lambda: defer.ensureDeferred(pool.get()))
        assert key is not None and pool.made == 1 and pool.ready() == 0


def test_create_takes_its_key_from_the_pool():
    with LocalGrid(4) as grid:
        keys = []

        def generate():
            keys.append(fresh_key())
            return keys[-1]

        pool = KeyPool(1, generate)
        client = MutableClient(grid.broker, lease_secret=b"L" * 32, k=2, n=4, key_pool=pool)
        grid.call(pool.fill)
        _wait(grid, pool, 1)
        node = grid.call(lambda: defer.ensureDeferred(client.create(b"hello")))
        expected, _, _ = mutable_caps_from_private_key(keys[0], False)
        assert parse_cap(node.cap.to_string()) == expected
        assert grid.call(lambda: defer.ensureDeferred(node.download_best_version())) == b"hello"
        grid.call(lambda: defer.ensureDeferred(pool.stop()))


def test_refill_waits_for_a_lull_unless_the_pool_runs_low():
    """A burst served from the pool makes no keys behind it (they would take the CPU the
    burst needs) until a quarter of the pool is left; a lull of idle_delay refills it."""
    from twisted.internet import task

    made = []

    def generate():
        made.append(fresh_key())
        return made[-1]

    with LocalGrid(1) as grid:
        clock = task.Clock()
        pool = KeyPool(8, generate, idle_delay=1.0, clock=clock)
        grid.call(pool.fill)
        _wait(grid, pool, 8)
        for _ in range(5):  # 8 -> 3 left: more than a quarter
            grid.call(lambda: defer.ensureDeferred(pool.get()))
        assert len(made) == 8 and grid.call(pool.ready) == 3  # nothing made during the burst
        grid.call(clock.advance, 0.5)
        grid.call(lambda: defer.ensureDeferred(pool.get()))  # 2 left: a quarter, refilled at once
        _wait(grid, pool, 8)
        assert len(made) == 14
        grid.call(lambda: defer.ensureDeferred(pool.get()))  # 7 left: waits for the lull
        grid.call(clock.advance, 0.9)
        assert grid.call(pool.ready) == 7 and len(made) == 14
        grid.call(clock.advance, 0.2)  # a second without a get(): refilled
        _wait(grid, pool, 8)
        assert len(made) == 15 and pool.served_from_pool == 7
        grid.call(lambda: defer.ensureDeferred(pool.stop()))
