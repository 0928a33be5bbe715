from __future__ import annotations

import threading

from promoter.server.deliveries import DeliveryMemory


def test_first_time_only_once_even_from_many_threads() -> None:
    memory = DeliveryMemory(capacity=10_000)
    firsts: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def deliver() -> None:
        start.wait(5)
        for i in range(500):
            if memory.first_time(f"id-{i}"):
                with lock:
                    firsts.append(f"id-{i}")

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(firsts) == sorted(f"id-{i}" for i in range(500))


def test_bounded_by_capacity_oldest_forgotten_first() -> None:
    memory = DeliveryMemory(capacity=3)
    for name in ("a", "b", "c", "d"):
        assert memory.first_time(name)
    assert len(memory) == 3
    assert memory.first_time("a")       # pushed out, so new again
    assert not memory.first_time("d")


def test_forgotten_after_the_ttl() -> None:
    now = [0.0]
    memory = DeliveryMemory(ttl_s=60, clock=lambda: now[0])
    assert memory.first_time("x")
    now[0] = 59.0
    assert not memory.first_time("x")
    now[0] = 120.0
    assert memory.first_time("x")
