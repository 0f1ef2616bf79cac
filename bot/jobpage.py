"""The job page, ``GET /jobs/<id>``: phase timeline, log (paged), usage and cost, links.

Access: a job of a public repository is public; any other job needs the signed, expiring
token its tracking comment's link carries (HMAC-SHA256 over the job id and the expiry, with
``JOB_PAGE_SECRET``). Everything shown is neutralised, known secrets are redacted and the
host's workspace paths are replaced, so neither a secret nor a sandbox path appears.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bot import status
from bot.jobs.store import Store
from bot.logs import Redactor, secret_values
from bot.settings import Settings

# Whether a repository is public; an error or an unknown repository counts as private.
Visibility = Callable[[str], Awaitable[bool]]


def _mac(secret: str, job_id: str, expires: int) -> str:
    message = f"{job_id}.{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_token(settings: Settings, job_id: str, *, now: float | None = None) -> str | None:
    """``<expiry>.<mac>`` for a link to ``job_id``; None without a job page secret."""
    if settings.job_page_secret is None:
        return None
    expires = int((time.time() if now is None else now) + settings.job_page_token_ttl_s)
    return f"{expires}.{_mac(settings.job_page_secret.get_secret_value(), job_id, expires)}"


def token_refusal(settings: Settings, job_id: str, token: str | None, now: float) -> str | None:
    """None when ``token`` opens ``job_id``'s page now; otherwise why not."""
    if settings.job_page_secret is None:
        return "this server signs no job page links"
    if not token:
        return "this job is of a private repository: open it from its tracking comment"
    expires_text, _, mac = token.partition(".")
    if not (expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 12):
        return "the link's token is malformed"
    expected = _mac(settings.job_page_secret.get_secret_value(), job_id, int(expires_text))
    if not hmac.compare_digest(expected, mac):
        return "the link's token is not valid for this job"
    if int(expires_text) < now:
        return "the link has expired: open the job from its tracking comment again"
    return None


def page_url(settings: Settings, job_id: str) -> str | None:
    """The link the tracking comment carries (signed when a secret is set)."""
    if settings.public_url is None:
        return None
    url = f"{settings.public_url.rstrip('/')}/jobs/{job_id}"
    token = sign_token(settings, job_id)
    return f"{url}?token={token}" if token else url


class Scrubber:
    """Text for the page: known secrets and host paths of workspaces and caches replaced."""

    def __init__(self, settings: Settings) -> None:
        self.redactor = Redactor(secret_values(settings))
        roots = {settings.work_dir, settings.cache_dir, Path(settings.bot_data_dir)}
        paths = {str(p) for p in roots} | {str(p.resolve()) for p in roots}
        self.paths = sorted((p for p in paths if p not in {"", "."}), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = self.redactor.scrub(text)
        for path in self.paths:
            text = text.replace(path, "<data>")
        return text


class JobPages:
    def __init__(self, settings: Settings, store: Store, visibility: Visibility) -> None:
        self.settings = settings
        self.store = store
        self.visibility = visibility
        self.scrub = Scrubber(settings)

    async def handle(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        job = await self.store.get_job(job_id)
        if job is None:
            return HTMLResponse(status.job_page_refused("no such job"), status_code=404)
        public = job.repository is not None and await self._public(job.repository)
        if not public:
            why = token_refusal(
                self.settings, job.id, request.query_params.get("token"), time.time()
            )
            if why is not None:
                return HTMLResponse(status.job_page_refused(why), status_code=403)
        page = _page_number(request.query_params.get("page"))
        per_page = self.settings.job_page_events_per_page
        events = await self.store.events(job.id)
        pages = max(1, -(-len(events) // per_page))
        page = min(page, pages)
        shown = events[(page - 1) * per_page : page * per_page]
        body = status.job_page(
            job,
            shown,
            page=page,
            pages=pages,
            token=request.query_params.get("token") if not public else None,
            web_url=web_url(self.settings.github_api_url),
            scrub=self.scrub,
        )
        return HTMLResponse(body, headers={"cache-control": "private, no-store"})

    async def _public(self, repository: str) -> bool:
        try:
            return await self.visibility(repository)
        except Exception:
            return False


def _page_number(raw: str | None) -> int:
    return int(raw) if raw is not None and raw.isdigit() and int(raw) >= 1 else 1


def web_url(api_url: str) -> str:
    """github.com for the public API; the GHES host for ``https://host/api/v3``."""
    base = api_url.rstrip("/")
    if base == "https://api.github.com":
        return "https://github.com"
    return base.removesuffix("/api/v3")
