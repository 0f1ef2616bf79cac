"""Issue 12's closing check: generated plugins inside a real ElizaOS host, as a maintainer would.

Generates plugins with ``plugin-bot create --generator scaffold`` from varied descriptions,
builds and ``npm pack``s each, installs the tarballs into a fresh host project next to
``@elizaos/core`` 1.7.2 and ``@elizaos/plugin-sql`` 1.7.2 (from the npm registry), checks npm
nested no second core, then runs ``host_check.mjs``: core's ``loadAndPreparePlugin``, a real
``AgentRuntime`` on PGlite ``memory://``, every component through the runtime's own paths, once
without a model and once with a stub ``OBJECT_SMALL`` model. Prints a table; exits 1 if a plugin
failed to load or a component threw.

    python tools/host_check.py [--work DIR] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORE = "1.7.2"

# (description, extra requests per component: text with parameters a user would write)
DESCRIPTIONS: tuple[tuple[str, dict[str, list[str]]], ...] = (
    (
        "A weather plugin with an action to get the forecast for a city, a provider for current "
        "temperature, a service that caches API responses, and an evaluator that detects locations",
        {"GET_FORECAST": ["get the forecast for the city Paris"]},
    ),
    (
        "Add an action SEND_TIP (takes an amount and a recipient), a provider for wallet balance, "
        "and an evaluator that records tipping requests",
        {"SEND_TIP": ["send a tip of 5 to alice"]},
    ),
    ("Free text-to-speech using Microsoft Edge TTS - no API key required", {}),
    (
        "A GitHub plugin: an action to create an issue in a repository, an action to comment on a "
        "pull request, and a provider for the repository's open issues. Needs a GITHUB_TOKEN.",
        {"CREATE_ISSUE": ["create an issue in the repository elizaos/eliza"]},
    ),
    (
        "A crypto price plugin: an action GET_TOKEN_PRICE that takes a symbol, and a price alert "
        "service that watches prices",
        {"GET_TOKEN_PRICE": ["get the token price for the symbol ETH"]},
    ),
    (
        "A facts plugin: an evaluator that extracts facts from conversations and a provider that "
        "supplies the known facts",
        {},
    ),
    (
        "An RSS plugin with a service that polls a feed every hour and an action to list the "
        "latest items",
        {},
    ),
    (
        "A moderation plugin with an evaluator that flags toxic messages and an action BAN_USER "
        "(user, reason)",
        {"BAN_USER": ["ban the user bob for the reason spam"]},
    ),
    (
        "Add a reminder plugin: an action SET_REMINDER that takes a message and a number of "
        "minutes, and a scheduler service that sends due reminders",
        {"SET_REMINDER": ["set a reminder with the message call mom in 10 minutes"]},
    ),
)


def run(cmd: list[str], cwd: Path, log: Path) -> int:
    print("$", " ".join(cmd), f"(in {cwd})", flush=True)
    with log.open("a") as out:
        env = {**os.environ, "BOT_DATA_DIR": str(log.parent / "data")}
        return subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env
        ).returncode


def plugin_bot() -> str:
    local = Path(sys.executable).with_name("plugin-bot")
    return str(local) if local.exists() else shutil.which("plugin-bot") or "plugin-bot"


def generate(
    work: Path, reuse: bool, failed_create: list[str]
) -> list[tuple[Path | None, dict[str, list[str]], str]]:
    data = work / "data"
    made: list[tuple[Path | None, dict[str, list[str]], str]] = []
    for i, (text, requests) in enumerate(DESCRIPTIONS, 1):
        out = work / "gen" / f"{i:02d}"
        found = sorted(p.parent for p in out.glob("*/package.json"))
        if not (reuse and found):
            out.mkdir(parents=True, exist_ok=True)
            cmd = [plugin_bot(), "create", "--generator", "scaffold", "--out", str(out), text]
            jobs = set(data.glob("work/job-*"))
            rc = run(cmd, work, work / f"gen-{i:02d}.log")
            found = sorted(p.parent for p in out.glob("*/package.json"))
            if rc != 0:
                # Nothing is written to --out when the plugin's own tests fail; the job's
                # workspace is kept, so the plugin is still tried in the host (and reported).
                kept = sorted(
                    p.parent
                    for j in set(data.glob("work/job-*")) - jobs
                    for p in j.glob("*/package.json")
                )
                print(f"  create exited {rc} (see gen-{i:02d}.log); trying its kept workspace")
                failed_create.append(kept[0].name if kept else text)
                found = kept
        made.append((found[0] if found else None, requests, text))
    return made


def pack(plugin: Path, work: Path) -> Path | None:
    log = work / f"pack-{plugin.name}.log"
    tarballs = work / "tarballs"
    tarballs.mkdir(exist_ok=True)
    # The exported plugin has no dist/: a maintainer installs, builds, then packs.
    for cmd in (
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
        ["npm", "run", "build"],
        ["npm", "pack", "--pack-destination", str(tarballs)],
    ):
        if run(cmd, plugin, log) != 0:
            print(f"  failed: {' '.join(cmd)} (see {log})")
            return None
    version = json.loads((plugin / "package.json").read_text())["version"]
    tarball = tarballs / f"{plugin.name}-{version}.tgz"
    return tarball if tarball.exists() else None


def required_settings(plugin: Path) -> dict[str, str]:
    meta = json.loads((plugin / "package.json").read_text())
    params = meta.get("agentConfig", {}).get("pluginParameters", {})
    return {k: "host-check-value" for k, v in params.items() if v.get("required")}


def nested_cores(host: Path) -> list[str]:
    top = host / "node_modules" / "@elizaos" / "core" / "package.json"
    return [
        str(p.parent.relative_to(host))
        for p in (host / "node_modules").glob("**/node_modules/@elizaos/core/package.json")
        if p != top
    ]


def cell(row: dict[str, Any]) -> str:
    status = "THREW" if row["threw"] else ("ok" if row.get("ok") else "no")
    extra = ""
    if row["kind"] == "provider":
        extra = f" dynamic={row['dynamic']} inEveryPrompt={row.get('inEveryPrompt')}"
    if row["kind"] == "action":
        extra = f" validate={row.get('validate')} req={row['request']!r}"
    threw = f" threw: {'; '.join(row['threw'])}" if row["threw"] else ""
    return f"{status}{extra} → {row.get('result', '')}{threw}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="working directory (default: a new temp dir)")
    parser.add_argument("--reuse", action="store_true", help="keep plugins generated in --work")
    args = parser.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="host-check-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir: {work}")

    failed = False
    entries: list[dict[str, Any]] = []
    tarballs: list[str] = []
    failed_create: list[str] = []
    for plugin, requests, text in generate(work, args.reuse, failed_create):
        if plugin is None:
            print(f"NOT GENERATED: {text!r}")
            failed = True
            continue
        tarball = pack(plugin, work)
        if tarball is None:
            print(f"NOT PACKED: {plugin.name}")
            failed = True
            continue
        tarballs.append(str(tarball))
        entries.append(
            {
                "package": plugin.name,
                "settings": required_settings(plugin),
                "requests": requests,
                "description": text,
            }
        )

    host = work / "host"
    shutil.rmtree(host, ignore_errors=True)
    host.mkdir()
    (host / "package.json").write_text(
        json.dumps({"name": "host-check", "private": True, "type": "module", "version": "0.0.0"})
    )
    shutil.copy(HERE / "host_check.mjs", host / "host_check.mjs")
    install = [
        "npm",
        "install",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        f"@elizaos/core@{CORE}",
        f"@elizaos/plugin-sql@{CORE}",
        *tarballs,
    ]
    if run(install, host, work / "host-install.log") != 0:
        print("host install failed (see host-install.log)")
        return 1
    nested = nested_cores(host)
    print(f"nested @elizaos/core copies: {nested or 'none'}")
    failed |= bool(nested)

    results: list[dict[str, Any]] = []
    env = {**os.environ, "LOG_LEVEL": "fatal", "ELIZA_NO_AUTO_INSTALL": "true"}
    for entry in entries:
        for mode in ("no-model", "stub-model"):
            config = host / f"config-{entry['package']}-{mode}.json"
            config.write_text(json.dumps({"plugin": entry, "mode": mode}))
            print("$ node host_check.mjs", config.name, flush=True)
            node = subprocess.run(
                [shutil.which("node") or "node", "host_check.mjs", config.name],
                cwd=host,
                capture_output=True,
                text=True,
                env=env,
            )
            (work / f"{config.stem}.stderr").write_text(node.stderr)
            lines = node.stdout.strip().splitlines()
            if node.returncode != 0 or not lines:
                results.append(
                    {
                        "package": entry["package"],
                        "mode": mode,
                        "loaded": False,
                        "components": [],
                        "errors": [
                            f"host_check.mjs exited {node.returncode}: "
                            + node.stderr.strip()[-300:].replace("\n", " ")
                        ],
                    }
                )
                continue
            results.append(json.loads(lines[-1]))
    print()
    print("| plugin | mode | loaded | components | component | result |")
    print("|---|---|---|---|---|---|")
    for r in results:
        comps = len({(c["kind"], c["name"]) for c in r["components"]})
        head = f"| {r['package']} | {r['mode']} | {'yes' if r['loaded'] else 'NO'} | {comps} |"
        if r["errors"]:
            print(f"{head} (plugin) | {'; '.join(r['errors'])} |")
            failed |= not r["loaded"] or not r.get("started", False) or not r.get("stopped", True)
        for c in r["components"]:
            print(f"{head} {c['kind']} {c['name']} | {cell(c).replace('|', '/')} |")
            failed |= bool(c["threw"])
        if r.get("loaded") and not r["errors"]:
            calls = f", model calls {r['modelCalls']}" if "modelCalls" in r else ""
            print(f"{head} (runtime) | started, stopped{calls} |")
        failed |= not r["loaded"]
    print()
    if failed_create:
        print("plugin-bot create failed (its own tests) for:", ", ".join(failed_create))
        failed = True
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
