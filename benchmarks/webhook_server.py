"""The plugin-bot side of benchmarks/webhooks.py: the real webhook app (``create_app``) over
the real job store, on a loopback port, as ``serve`` runs it but without the dispatcher and
workers (they would talk to GitHub): what is measured is the ack with the command stored.

    DATABASE_URL=… GITHUB_WEBHOOK_SECRET=… python benchmarks/webhook_server.py PORT
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import uvicorn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot import logs  # noqa: E402
from bot.github.desk import StoreDesk  # noqa: E402
from bot.github.service import freeze_startup_heap, run_event_loop  # noqa: E402
from bot.jobs.migrations import upgrade  # noqa: E402
from bot.jobs.store import Store  # noqa: E402
from bot.server import create_app  # noqa: E402
from bot.settings import load_settings  # noqa: E402


async def main(port: int) -> None:
    settings = load_settings()
    logs.configure(settings, level="warning")
    store = Store.from_settings(settings)
    await upgrade(store)
    app = create_app(settings, StoreDesk(store, settings), None, jobs=store)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, backlog=512
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    freeze_startup_heap()  # as serve does
    await uvicorn.Server(config).serve()
    await store.close()


if __name__ == "__main__":
    run_event_loop(main(int(sys.argv[1])))
