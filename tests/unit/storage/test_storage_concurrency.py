"""Calls from several threads at once: allocations split cleanly, test-and-set has one winner."""

import threading

from shoal.storage import StorageServer

SI = b"\x77" * 16
SLOT = b"\x78" * 16
SECRETS = (b"w" * 32, b"r" * 32, b"c" * 32)


def run_together(count, target):
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        barrier.wait()
        results[index] = target(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_clients_allocating_the_same_storage_index_at_once_get_disjoint_shares(server: StorageServer):
    def allocate(index):
        renew = bytes([index]) * 32
        return server.allocate_buckets(SI, renew, renew, set(range(20)), 1000)[1]

    results = run_together(8, allocate)
    granted = [shnum for writers in results for shnum in writers]
    assert sorted(granted) == list(range(20))  # each share to exactly one client
    for writers in results:
        for writer in writers.values():
            writer.write(0, bytes([writer.shnum]) * 1000)
            writer.close()
    readers = server.get_buckets(SI)
    assert {shnum: reader.read(0, 1000) for shnum, reader in readers.items()} == {
        shnum: bytes([shnum]) * 1000 for shnum in range(20)
    }


def test_racing_test_and_set_has_exactly_one_winner_per_version(server: StorageServer):
    server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(0, b"v0")], None)}, [])

    def try_to_update(index):
        wins = 0
        for _round in range(20):
            current = server.slot_readv(SLOT, [0], [(0, 2)])[0][0]
            nxt = b"v%d" % ((int(current[1:]) + 1) % 10)
            ok, _ = server.slot_testv_and_readv_and_writev(
                SLOT, SECRETS, {0: ([(0, 2, b"eq", current)], [(0, nxt), (2, bytes([index]))], None)}, []
            )
            wins += ok
        return wins

    wins = run_together(6, try_to_update)
    (data,) = server.slot_readv(SLOT, [0], [(0, 10)])[0]
    assert int(data[1:2]) == sum(wins) % 10  # every success advanced the version by one
    assert len(data) == 3
