"""``plugin-bot submit | jobs | job | cancel | worker | db``: jobs without GitHub.

Only argparse and the job states are imported up front: the database code loads when a job
command runs, so ``plugin-bot create`` and ``--help`` stay quick.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from bot.jobs.states import JobState
from bot.neutralise import console as console_text
from bot.runner import GENERATORS
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.queue import Queue
    from bot.jobs.store import Job, Store
    from bot.spec.schema import PluginSpec

COMMANDS = ("submit", "jobs", "job", "cancel", "worker", "db")


def add_job_commands(sub: Any) -> None:
    """Register the job commands on the ``plugin-bot`` sub-parser."""
    submit = sub.add_parser("submit", help="queue a job without GitHub")
    submit.add_argument("description", nargs="?", default="", help="what the plugin should do")
    submit.add_argument("--spec", type=Path, help="a PluginSpec as JSON or YAML")
    submit.add_argument("--generator", choices=list(GENERATORS), default="auto")
    submit.add_argument("--json", action="store_true", help="print the answer as JSON")
    jobs = sub.add_parser("jobs", help="list jobs, newest first")
    jobs.add_argument("--state", choices=[s.value for s in JobState])
    jobs.add_argument("--repo", help="only jobs of this owner/name")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--json", action="store_true")
    job = sub.add_parser("job", help="one job: phases, events, usage, result")
    job.add_argument("id", help="the job id or a prefix of it")
    job.add_argument("--json", action="store_true")
    cancel = sub.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("id")
    worker = sub.add_parser("worker", help="run jobs (scale out: as many as you like)")
    worker.add_argument("--concurrency", type=int, help="jobs at once (WORKER_CONCURRENCY)")
    db = sub.add_parser("db", help="the job database")
    db.add_argument("action", choices=["upgrade", "status"])


@asynccontextmanager
async def _opened(settings: Settings, *, with_queue: bool) -> AsyncIterator[tuple[Store, Queue]]:
    from bot.jobs.migrations import require_current
    from bot.jobs.queue import queue_for
    from bot.jobs.store import Store

    store = Store.from_settings(settings)
    try:
        await require_current(store)
        queue = queue_for(store, settings)
        if with_queue:
            await queue.open()
        try:
            yield store, queue
        finally:
            if with_queue:
                await queue.close()
    finally:
        await store.close()


def _job_json(job: Job, **extra: Any) -> dict[str, Any]:
    return job.to_json() | extra


async def _submit(
    args: argparse.Namespace, settings: Settings, console: Console, spec: PluginSpec | None
) -> int:
    from bot import status
    from bot.jobs import queue as jobs_queue
    from bot.jobs.limits import JobLimits, RateLimited
    from bot.jobs.store import NewJob
    from bot.pipeline.context import Origin

    description = args.description or (spec.description if spec else "")
    if not description.strip():
        console.print("[red]a DESCRIPTION or --spec FILE is needed[/]")
        return 2
    new = NewJob(
        description, Origin(requester=getpass.getuser()), spec=spec, generator=args.generator
    )
    async with _opened(settings, with_queue=True) as (store, queue):
        answer = await jobs_queue.submit(
            store,
            queue,
            new,
            JobLimits.from_settings(settings),
            max_attempts=settings.job_max_attempts,
        )
    if isinstance(answer, RateLimited):
        if args.json:
            print(
                json.dumps(
                    {
                        "refused": answer.scope,
                        "limit": answer.limit,
                        "retry_at": answer.retry_at.isoformat(),
                    }
                )
            )
        else:
            console.print(f"[red]{console_text(status.job_refused(answer))}[/]")
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "id": answer.job_id,
                    "state": "queued",
                    "position": answer.position,
                    "waiting_on": answer.waiting_on,
                }
            )
        )
    else:
        console.print(console_text(status.job_accepted(answer)))
    return 0


async def _list(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot import status

    async with _opened(settings, with_queue=False) as (store, _):
        state = JobState(args.state) if args.state else None
        found = await store.list_jobs(repository=args.repo, state=state, limit=args.limit)
    if args.json:
        print(json.dumps([_job_json(j) for j in found], indent=2))
        return 0
    table = Table("id", "state", "phase", "attempts", "created", "description", box=None)
    for job in found:
        table.add_row(*(console_text(cell) for cell in status.job_line(job)))
    console.print(table)
    return 0


async def _show(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot import status

    async with _opened(settings, with_queue=False) as (store, _):
        job = await store.find_job(args.id)
        if job is None:
            console.print(f"[red]{console_text(status.no_such_job(args.id))}[/]")
            return 1
        events = await store.events(job.id)
        position = await store.queue_position(job.id)
    if args.json:
        data = _job_json(job, position=position, events=[e.to_json() for e in events])
        print(json.dumps(data, indent=2))
        return 0
    table = Table(show_header=False, box=None, padding=(0, 2))
    for name, value in status.job_details(job, position):
        table.add_row(name, console_text(value))
    console.print(table)
    for event in events:
        console.print(console_text(status.event_line(event)), highlight=False)
    return 0


async def _cancel(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot import status
    from bot.jobs import queue as jobs_queue

    async with _opened(settings, with_queue=True) as (store, queue):
        found = await store.find_job(args.id)
        job = await jobs_queue.cancel(store, queue, found.id) if found else None
    if job is None:
        console.print(f"[red]{console_text(status.no_such_job(args.id))}[/]")
        return 1
    console.print(console_text(status.job_cancel_answer(job)))
    return 0


async def _worker(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot import status
    from bot.jobs.worker import Worker

    async with _opened(settings, with_queue=True) as (store, queue):
        worker = Worker(store, queue, settings, concurrency=args.concurrency)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        console.print(
            console_text(status.worker_started(worker.name, queue.name, worker.concurrency))
        )
        await worker.run(stop)
    return 0


async def _db(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot.jobs.migrations import schema_status, upgrade
    from bot.jobs.store import Store

    store = Store.from_settings(settings)
    try:
        found = await (upgrade(store) if args.action == "upgrade" else schema_status(store))
    finally:
        await store.close()
    console.print(console_text(found.advice))
    return 0 if found.state == "current" else 1


async def run_job_command(
    args: argparse.Namespace, settings: Settings, console: Console, spec: PluginSpec | None
) -> int:
    if args.command == "submit":
        return await _submit(args, settings, console, spec)
    handler = {"jobs": _list, "job": _show, "cancel": _cancel, "worker": _worker, "db": _db}
    return await handler[args.command](args, settings, console)
