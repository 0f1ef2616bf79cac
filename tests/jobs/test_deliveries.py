"""Webhook deliveries are group-committed (bot/jobs/deliveries.py), on SQLite and on
PostgreSQL: concurrent deliveries share one transaction, each delivery id is stored once
(with the first command that carried it), and a caller hears True only from a commit."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.jobs.migrations import upgrade
from bot.jobs.records import DeliveryIn
from bot.jobs.store import CommandIn, Store
from bot.jobs.tables import commands, deliveries
from bot.settings import Settings
from tests.fakes.database_faults import InjectedFault, failing_commits, failing_statements
from tests.jobs.conftest import job_settings


def command(body: str) -> CommandIn:
    return CommandIn(
        name="create-plugin",
        argument=body.removeprefix("/create-plugin "),
        body=body,
        requester="alice",
        repository="o/r",
        installation_id=3,
        issue=12,
        comment_id=2_500_000_000,
    )


async def record(store: Store, delivery_id: str, body: str = "") -> bool:
    return await store.record_delivery(
        delivery_id,
        "issue_comment",
        action="created",
        installation_id=3,
        repository="o/r",
        command=command(body or f"/create-plugin for {delivery_id}"),
    )


async def stored(store: Store) -> dict[str, tuple[dt.datetime, str]]:
    """delivery id -> (when its transaction stored it, its command's body)."""
    async with store.engine.begin() as conn:
        rows = await conn.execute(
            select(deliveries.c.delivery_id, deliveries.c.received_at, commands.c.body).join(
                commands, commands.c.delivery_id == deliveries.c.delivery_id
            )
        )
        return {r.delivery_id: (r.received_at, r.body) for r in rows}


async def test_concurrent_deliveries_share_a_transaction_and_each_is_stored_once(
    store: Store,
) -> None:
    assert await record(store, "d-old")
    fresh = [f"d-{i}" for i in range(40)]
    calls = [(d, f"/create-plugin first for {d}") for d in fresh]
    # Redeliveries: of one stored before, and of two that are in this very burst.
    calls[10:10] = [("d-old", "/create-plugin again")]
    calls += [("d-3", "/create-plugin second for d-3"), ("d-7", "/create-plugin second")]
    answers = await asyncio.gather(*(record(store, d, body) for d, body in calls))
    assert [d for (d, _), new in zip(calls, answers, strict=True) if new] == fresh
    assert answers.count(False) == 3
    rows = await stored(store)
    assert sorted(rows) == sorted([*fresh, "d-old"])
    assert rows["d-3"][1] == "/create-plugin first for d-3"  # the first one's command stands
    assert rows["d-old"][1] == "/create-plugin for d-old"
    # One transaction for the burst: one clock reading, shared by every row it stored.
    assert len({rows[d][0] for d in fresh}) == 1
    assert rows["d-old"][0] != rows["d-0"][0]


async def test_a_burst_larger_than_the_batch_cap_takes_several_transactions(
    settings: Settings,
) -> None:
    store = Store.from_settings(settings.model_copy(update={"webhook_commit_batch": 16}))
    await upgrade(store)
    try:
        fresh = [f"d-{i}" for i in range(40)]
        assert all(await asyncio.gather(*(record(store, d) for d in fresh)))
        rows = await stored(store)
        sizes = collections.Counter(rows[d][0] for d in fresh)
        assert sorted(sizes.values()) == [8, 16, 16]
    finally:
        await store.close()


async def test_a_failed_commit_fails_every_delivery_of_its_batch_and_stores_none(
    store: Store,
) -> None:
    burst = [f"d-{i}" for i in range(12)]
    with failing_commits() as failed:
        answers: list[Any] = await asyncio.gather(
            *(record(store, d) for d in burst), return_exceptions=True
        )
    assert failed[0] >= 1
    assert all(isinstance(a, InjectedFault) for a in answers), answers
    assert await stored(store) == {}
    # Nothing of them was stored: the redeliveries are new, not duplicates.
    assert all(await asyncio.gather(*(record(store, d) for d in burst)))
    assert sorted(await stored(store)) == sorted(burst)


async def test_a_row_that_fails_fails_only_its_own_delivery(store: Store) -> None:
    burst = ["d-1", "d-2", "d-poison", "d-3", "d-4"]
    with failing_statements(containing="d-poison"):
        answers: list[Any] = await asyncio.gather(
            *(record(store, d) for d in burst), return_exceptions=True
        )
    assert [a is True for a in answers] == [True, True, False, True, True]
    assert isinstance(answers[2], InjectedFault)
    assert sorted(await stored(store)) == ["d-1", "d-2", "d-3", "d-4"]


async def test_a_caller_that_gives_up_does_not_stop_its_delivery_being_stored(
    store: Store,
) -> None:
    waiting = asyncio.create_task(record(store, "d-gone"))
    await asyncio.sleep(0)  # it has handed its delivery to the writer
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await record(store, "d-next")  # committed after (or with) the abandoned one
    assert sorted(await stored(store)) == ["d-gone", "d-next"]


async def test_closing_the_store_writes_what_is_pending(settings: Settings) -> None:
    store = Store.from_settings(settings)
    await upgrade(store)
    pending = [asyncio.create_task(record(store, f"d-{i}")) for i in range(5)]
    await asyncio.sleep(0)
    await store.close()
    assert all(await asyncio.gather(*pending))
    again = Store.from_settings(settings)
    try:
        assert sorted(await stored(again)) == [f"d-{i}" for i in range(5)]
    finally:
        await again.close()


@pytest.mark.parametrize(("setting", "pragma"), [("full", 2), ("normal", 1)])
async def test_sqlite_commits_are_fsynced_unless_told_otherwise(
    tmp_path: Path, setting: str, pragma: int
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", sqlite_synchronous=setting
    )
    store = Store.from_settings(settings)
    await upgrade(store)
    try:
        assert await record(store, "d-1")  # through the delivery writer's own connection
        async with store.engine.begin() as conn:
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == pragma
        writer = store._deliveries._sync_engine
        assert writer is not None
        with writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
    finally:
        await store.close()


async def test_a_delivery_waits_in_a_thread_while_another_connection_holds_sqlites_lock(
    tmp_path: Path,
) -> None:
    """The writer runs on the event loop and never waits there for SQLite's write lock: a
    transaction of the job store on the same loop holds it (and needs the loop to finish),
    so the batch goes to a thread that waits for the lock, and is stored once it is free."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    store = Store.from_settings(settings)
    await upgrade(store)
    try:
        assert await record(store, "d-before")  # the writer's own connection is open
        async with store.engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock
            await conn.exec_driver_sql("UPDATE commands SET outcome = 'held' WHERE 1 = 0")
            waiting = asyncio.create_task(record(store, "d-1"))
            for _ in range(20):  # the loop keeps running meanwhile
                await asyncio.sleep(0.01)
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 60) is True
        assert sorted(await stored(store)) == ["d-1", "d-before"]
    finally:
        await store.close()


async def test_a_postgres_connection_broken_between_batches_is_replaced(
    pg_url: str, tmp_path: Path
) -> None:
    """The PostgreSQL writer keeps its connection; one the server dropped since the last
    batch (a restart) is replaced and the batch sent again, not answered 503."""
    store = Store.from_settings(job_settings(tmp_path, pg_url))
    await upgrade(store)
    try:
        await _survives_a_dropped_connection(store)
    finally:
        await store.close()


async def _survives_a_dropped_connection(store: Store) -> None:
    assert await record(store, "d-1")
    held = store._deliveries._conn
    assert held is not None and not held.closed
    async with store.engine.begin() as conn:
        killed = await conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert any(row[0] for row in killed)
    assert await record(store, "d-2")
    assert store._deliveries._conn is not held
    assert sorted(await stored(store)) == ["d-1", "d-2"]


async def test_two_postgres_writers_with_overlapping_batches_never_deadlock(
    pg_url: str, tmp_path: Path
) -> None:
    """Two processes write to one database (two `serve` processes behind one balancer, or
    old and new during a rolling upgrade); redeliveries can put one delivery id in both."""
    # Batches holding the same ids in opposite orders used to take their row locks in
    # opposite orders: PostgreSQL broke the deadlock by failing one batch, which answered
    # 503 to every request in it. Each id is now stored exactly once, with no error.
    first = Store.from_settings(job_settings(tmp_path, pg_url))
    await upgrade(first)
    second = Store.from_settings(job_settings(tmp_path, pg_url))
    try:
        for round_ in range(8):
            ids = [f"r{round_}-{i:04d}" for i in range(6000)]
            batch = [
                DeliveryIn(d, "issue_comment", "created", 3, "o/r", command(f"/create-plugin {d}"))
                for d in ids
            ]
            answers = await asyncio.gather(
                first._deliveries.write(batch), second._deliveries.write(batch[::-1])
            )
            new_first = {d for d, new in zip(ids, answers[0], strict=True) if new}
            new_second = {d for d, new in zip(ids[::-1], answers[1], strict=True) if new}
            assert not new_first & new_second
            assert new_first | new_second == set(ids)
        rows = await stored(first)
        assert len(rows) == 8 * 6000
    finally:
        await first.close()
        await second.close()
