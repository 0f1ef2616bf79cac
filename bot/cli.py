"""The ``plugin-bot`` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.progress import (
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from bot import logs, status
from bot.errors import BotError
from bot.jobs.commands import COMMANDS as JOB_COMMANDS
from bot.jobs.commands import add_job_commands, run_job_command
from bot.manifest import (
    ManifestError,
    VerificationError,
    add_verify_arguments,
    generate_key,
    verify_from_args,
)
from bot.neutralise import console as console_text
from bot.neutralise import plain
from bot.pack import PackError
from bot.pipeline import CHECK_PHASES, PHASE_NAMES
from bot.pipeline.context import JobProgress, PhaseRecord
from bot.runner import GENERATORS, Outcome, Runner
from bot.sandbox import SandboxError
from bot.settings import Settings, load_settings
from bot.spec.schema import PluginSpec, SpecError, problems_from, render_problems, validate_spec

# Commands that run as services: every log line (the rest log warnings only).
LOGGING_COMMANDS = {"serve", "worker", "redeliver"}

MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "cancelled": "[yellow]⊘[/]",
    "skipped": "[dim]–[/]",
}


class PhaseSpinner(SpinnerColumn):
    """A spinner for the running phase only; a waiting phase shows a dot."""

    def render(self, task: Task) -> RenderableType:
        if not task.started:
            return Text("·", style="dim")
        return super().render(task)


class ProgressReporter:
    """A live line per phase on a terminal; plain lines otherwise (CI logs, pipes)."""

    def __init__(self, console: Console, phases: Sequence[str]) -> None:
        self.console = console
        self.live = console.is_terminal
        self.notes: dict[str, str] = {}
        self.progress = Progress(
            PhaseSpinner(finished_text=" "),
            TextColumn("{task.description:<9}"),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        if self.live:
            for name in phases:
                self.tasks[name] = self.progress.add_task(name, total=1, start=False, note="")

    def __enter__(self) -> ProgressReporter:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def phase_started(self, phase: str) -> None:
        if self.live:
            self.progress.start_task(self.tasks[phase])
        else:
            self.console.print(f"▶ {phase}", highlight=False)

    def phase_note(self, phase: str, note: str) -> None:
        self.notes[phase] = note
        if self.live:
            self.progress.update(self.tasks[phase], note=console_text(note))

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        note = record.error or self.notes.get(phase, "")
        mark = MARKS.get(record.state, record.state)
        if self.live:
            self.progress.update(
                self.tasks[phase],
                completed=1,
                description=f"{mark} {phase}",
                note=console_text(note),
            )
            self.progress.stop_task(self.tasks[phase])
        else:
            self.console.print(
                f"{mark} {phase} [dim]({record.wall_s:.1f}s)[/] {console_text(note)}",
                highlight=False,
            )

    def progress_changed(self, progress: JobProgress) -> None:
        pass  # the summary line gives the usage at the end


def _summary(console: Console, outcome: Outcome) -> None:
    ctx = outcome.ctx
    table = Table(show_header=False, box=None, padding=(0, 2))
    if ctx.result.spec is not None:
        spec = ctx.result.spec
        table.add_row("plugin", console_text(f"{spec.name} {spec.version}"))
        for kind, items in (
            ("actions", spec.actions),
            ("providers", spec.providers),
            ("services", spec.services),
            ("evaluators", spec.evaluators),
        ):
            if items:
                table.add_row(kind, console_text(", ".join(i.name for i in items)))
        if spec.environment:
            table.add_row("settings", console_text(", ".join(v.name for v in spec.environment)))
    if ctx.result.files:
        table.add_row("files", str(len(ctx.result.files)))
    generator = ctx.tools.generator
    table.add_row(
        "generator",
        console_text(generator.name + (f" ({generator.model})" if generator.model else "")),
    )
    meter = outcome.meter
    if meter.calls:
        usage = meter.usage
        table.add_row(
            "model",
            f"{ctx.result.rounds_used} check rounds, {ctx.result.model_turns} turns, "
            f"{usage.total_input} in / {usage.output_tokens} out tokens, "
            f"{usage.cache_share:.0%} of input from cache, ${meter.cost_usd:.4f}",
        )
    results = ctx.result.test_results
    if results is not None:
        line = f"{results.passed} passed, {results.failed} failed"
        if results.skipped:
            line += f", {results.skipped} skipped"
        table.add_row("tests", f"{line} ({len(results.files)} files)")
    durations = "  ".join(
        f"{r.name} {r.wall_s:.1f}s" for r in ctx.result.records.values() if r.state != "skipped"
    )
    table.add_row("durations", f"{durations}  (total {outcome.wall_s:.1f}s)")
    if "sign" in ctx.result.records and ctx.result.records["sign"].state == "passed":
        if ctx.result.manifest is not None:
            table.add_row("manifest", f"signed: {console_text(ctx.result.manifest.name)}")
        else:
            table.add_row("manifest", "[yellow]not signed[/]: no signing key (SIGNING_KEY_PATH)")
    if outcome.published is not None:
        table.add_row(
            "written to", console_text(outcome.published.url or outcome.published.location)
        )
    if outcome.kept_workspace is not None:
        table.add_row("kept for a look", console_text(str(outcome.kept_workspace)))
    console.print(table)
    failed = ctx.failed_phase
    if failed is None:
        console.print("[bold green]✓ built and tested[/]")
        return
    console.print(f"[bold red]✗ {failed.name} failed:[/] {console_text(failed.error)}")
    if failed.detail:
        console.print(plain(failed.detail), highlight=False, markup=False)


def _load_spec(path: Path, settings: Settings) -> PluginSpec:
    text = path.read_text()
    data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return validate_spec(data, settings.allowed_dependencies)


async def _create(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    spec = _load_spec(args.spec, settings) if args.spec else None
    description = args.description or (spec.description if spec else "")
    if not description.strip():
        console.print("[red]a DESCRIPTION or --spec FILE is needed[/]")
        return 2
    jobs = Runner(settings)
    phases = list(PHASE_NAMES)
    with ProgressReporter(console, phases) as reporter:
        outcome = await jobs.create(
            description,
            out=args.out,
            spec=spec,
            generator=args.generator,
            reporter=reporter,
            overwrite=args.force,
        )
    _summary(console, outcome)
    return 0 if outcome.ok else 1


async def _check(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    jobs = Runner(settings)
    phases = [name for name, _ in CHECK_PHASES]
    with ProgressReporter(console, phases) as reporter:
        outcome = await jobs.check(args.dir, reporter=reporter)
    _summary(console, outcome)
    return 0 if outcome.ok else 1


def _keygen(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    passphrase: bytes | None = None
    if args.passphrase:
        first = getpass.getpass("passphrase: ")
        if first != getpass.getpass("again: "):
            console.print("[red]the passphrases differ[/]")
            return 2
        passphrase = first.encode() or None
    path, entry = generate_key(args.out, passphrase)
    console.print(f"private key: {console_text(str(path))} (mode 0600; set SIGNING_KEY_PATH to it)")
    console.print("keys-file entry for .github/plugin-bot/keys.json:")
    print(json.dumps(entry, indent=2))
    return 0


def _verify(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    try:
        result = verify_from_args(args)
    except VerificationError as exc:
        console.print(
            f"[red]✗ {console_text(str(args.dir))}: {console_text(str(exc))}[/] "
            f"({console_text(exc.reason)})"
        )
        return 1
    for line in result.checked:
        console.print(f"[green]✓[/] {console_text(line)}")
    console.print(f"[bold green]verified[/] {console_text(str(args.dir))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plugin-bot", description="Turn a description into a built, tested ElizaOS plugin."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="run the whole pipeline locally (no GitHub)")
    create.add_argument("description", nargs="?", default="", help="what the plugin should do")
    create.add_argument("--spec", type=Path, help="a PluginSpec as JSON or YAML")
    create.add_argument(
        "--out", type=Path, default=Path("plugins"), help="where plugins/<name>/ is written"
    )
    create.add_argument(
        "--generator",
        choices=list(GENERATORS),
        default="auto",
        help="who writes the code: anthropic (the model, through tools, until build and tests "
        "pass), scaffold (the template's working code, no model), auto (anthropic when "
        "ANTHROPIC_API_KEY is set, else scaffold)",
    )
    create.add_argument("--force", action="store_true", help="replace an existing plugin dir")
    check = sub.add_parser("check", help="install, build and test a plugin directory")
    check.add_argument("dir", type=Path)
    verify = sub.add_parser("verify", help="check the signed manifest of a plugin directory")
    add_verify_arguments(verify, keys=Path(".github/plugin-bot/keys.json"))
    keygen = sub.add_parser("keygen", help="a new Ed25519 signing key and its keys-file entry")
    keygen.add_argument("--out", type=Path, default=Path("."), help="where the key is written")
    keygen.add_argument("--passphrase", action="store_true", help="encrypt it (asks twice)")
    add_job_commands(sub)
    serve = sub.add_parser("serve", help="webhook server with the dispatcher and workers")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000)
    redeliver = sub.add_parser("redeliver", help="ask GitHub to redeliver failed deliveries")
    redeliver.add_argument("--since", default="24h", help="how far back (30m, 24h, 3d)")
    return parser


def _redeliver(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot.github.client import GitHubApp
    from bot.github.redeliver import parse_since, redeliver_failed

    window = parse_since(args.since)
    report = asyncio.run(redeliver_failed(GitHubApp(settings), window))
    console.print(console_text(status.redelivery_summary(report, args.since)))
    return 1 if report.errors else 0


def _serve(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from bot.github.service import run_event_loop, serve  # the GitHub front: serve only

    run_event_loop(serve(settings, args.host, args.port))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        settings = load_settings()
        # Services log every line; interactive commands only warnings (they print a summary).
        logs.configure(settings, level=None if args.command in LOGGING_COMMANDS else "warning")
        if args.command in {"verify", "keygen", "serve", "redeliver"}:
            sync = {"verify": _verify, "keygen": _keygen, "serve": _serve, "redeliver": _redeliver}
            return sync[args.command](args, settings, console)
        if args.command in JOB_COMMANDS:
            spec = _load_spec(args.spec, settings) if getattr(args, "spec", None) else None
            return asyncio.run(run_job_command(args, settings, console, spec))
        handler = {"create": _create, "check": _check}[args.command]
        return asyncio.run(handler(args, settings, console))
    except SpecError as exc:
        console.print("[red]invalid spec:[/]\n" + console_text(render_problems(exc.problems)))
    except ValidationError as exc:
        problems = render_problems(problems_from(exc))
        console.print("[red]invalid settings in the environment:[/]\n" + console_text(problems))
    except yaml.YAMLError as exc:
        console.print(f"[red]the spec file is not valid YAML:[/] {console_text(str(exc))}")
    except (SandboxError, PackError, ManifestError, OSError, ValueError, BotError) as exc:
        console.print(f"[red]error:[/] {console_text(str(exc))}")
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
