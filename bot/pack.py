"""Template packs: a directory with ``pack.toml``, Jinja2 templates and static files.

``load_pack`` reads and validates the pack description; ``render_pack`` turns a
:class:`~bot.spec.schema.PluginSpec` into a plugin directory. Everything in a spec comes from
a stranger, so spec text reaches generated code only through the ``js`` filter (a JSON
string literal, valid in TypeScript and JSON alike) and reaches Markdown only through
the ``md`` filter. Output paths are checked to stay inside the destination.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
)

from bot import neutralise, paths
from bot.scaffold_text import action_samples, component_context, sample_input
from bot.settings import DEFAULT_ALLOWED_DEPENDENCIES
from bot.spec.schema import PluginSpec, camel, constant, kebab, pascal, words

PACK_FILE = "pack.toml"
TEMPLATE_SUFFIX = ".j2"
PACKAGE_JSON = "package.json"
PACKAGE_LOCK = "package-lock.json"
RESULTS_PLACEHOLDER = "{results_json}"
KEBAB_PLACEHOLDER = "{kebab}"

# ``each`` value -> the word a component's identifier ends with.
COMPONENT_KINDS: dict[str, str] = {
    "actions": "Action",
    "providers": "Provider",
    "services": "Service",
    "evaluators": "Evaluator",
}
DEPENDENCY_SECTIONS = ("dependencies", "devDependencies")
# Recorded in the lock's root like the others; npm ci refuses a lock whose root differs.
ROOT_SECTIONS = (*DEPENDENCY_SECTIONS, "peerDependencies")


class PackError(Exception):
    """A malformed pack, a missing template, an unsafe output path or a failed render."""


@dataclass(frozen=True)
class PackFile:
    template: str
    output: str
    each: str | None = None


@dataclass(frozen=True)
class TemplatePack:
    name: str
    version: str
    language: str
    root: Path
    install: tuple[str, ...]
    build: tuple[str, ...]
    test: tuple[str, ...]
    files: tuple[PackFile, ...]
    # The test that drives every component through a real AgentRuntime, and the suite it
    # runs (the no-cheating guard holds both to cover every component).
    integration_test: str | None = None
    runtime_suite: str | None = None
    # A Node script of the pack (never rendered into a plugin) that the dependency cache
    # runs once in each finished tree, network off, to prepare what tests reuse.
    prepare_dependencies: Path | None = None
    # A Node script of the pack that serves repeated check rounds (build + test) from one
    # long-lived process; the final round is always the cold build and test commands.
    warm_checker: Path | None = None

    def test_command(self, results_json: str) -> tuple[str, ...]:
        """The test argv with ``{results_json}`` replaced by ``results_json``."""
        return tuple(arg.replace(RESULTS_PLACEHOLDER, results_json) for arg in self.test)


# --------------------------------------------------------------------------- filters


def js_literal(value: Any) -> str:
    """``value`` as a JSON literal that is also safe inside TS/JS source and HTML.

    ``ensure_ascii`` turns every non-ASCII character (U+2028 and U+2029 included) into an
    escape; ``<``, ``>`` and ``&`` are escaped too so that ``</script>`` or ``-->`` never
    appear literally.
    """
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def md_text(value: Any) -> str:
    """Spec text as Markdown prose on one line: no link, mention, image, HTML or heading."""
    return neutralise.md_text(str(value))


def md_code(value: Any) -> str:
    """Spec text as an inline code span: shown verbatim, never rendered or linked."""
    return neutralise.md_code(str(value))


# ------------------------------------------------------------------------ identifiers


def plugin_identifier(package_name: str) -> str:
    """A TS identifier for the exported Plugin: ``plugin-weather`` -> ``weatherPlugin``."""
    unscoped = package_name.rsplit("/", 1)[-1].lower()
    parts = [p for p in re.split(r"[^a-z0-9]+", unscoped) if p and p != "plugin"]
    if parts and parts[0][0].isdigit():
        parts.insert(0, "plugin")
    head, tail = (parts[0], parts[1:]) if parts else ("", [])
    return head + "".join(p[:1].upper() + p[1:] for p in tail) + ("Plugin" if head else "plugin")


def component_identifiers(spec: PluginSpec) -> dict[str, str]:
    """Component name -> the TS identifier it is exported as.

    Actions, providers and evaluators become camelCase values ending in their kind
    (``GetWeather`` -> ``getWeatherAction``), services PascalCase classes
    (``Weather`` -> ``WeatherService``). A name that already ends with its kind keeps a
    single suffix (``WeatherService`` -> ``WeatherService``) unless that would collide.
    """
    short: dict[str, str] = {}
    full: dict[str, str] = {}
    for attr, suffix in COMPONENT_KINDS.items():
        for component in getattr(spec, attr):
            base = pascal(component.name) if attr == "services" else camel(component.name)
            parts = words(component.name)
            full[component.name] = base + suffix
            ends_with_kind = len(parts) > 1 and parts[-1] == suffix.lower()
            short[component.name] = base if ends_with_kind else base + suffix
    chosen = dict(short)
    changed = True
    while changed:
        changed = False
        counts = Counter(chosen.values())
        for name, ident in chosen.items():
            if counts[ident] > 1 and ident != full[name]:
                chosen[name] = full[name]
                changed = True
    return chosen


# ----------------------------------------------------------------------------- paths


def check_relative_path(path: str) -> PurePosixPath:
    """A pack path checked by the one path rule (bot/paths.py)."""
    try:
        return PurePosixPath(*paths.check_relative(path))
    except paths.PathRefused as exc:
        raise PackError(f"output path {path!r} is refused: {exc}") from None


def _format_output(output: str, component_name: str | None) -> str:
    if component_name is not None:
        output = output.replace(KEBAB_PLACEHOLDER, kebab(component_name))
    if "{" in output or "}" in output:
        raise PackError(f"output path {output!r} has an unknown placeholder")
    return output


# ------------------------------------------------------------------------------ load


def _string(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PackError(f"{where}.{key} must be a non-empty string")
    return value


def _argv(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(arg, str) and arg for arg in value)
    ):
        raise PackError(f"commands.{key} must be a non-empty list of non-empty strings")
    return tuple(value)


def _unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise PackError(f"{where} has unknown keys: {', '.join(extra)}")


_OPTIONAL_PACK_PATHS = ("integration_test", "runtime_suite")


def _optional_path(meta: Mapping[str, Any], key: str, outputs: set[str]) -> str | None:
    if key not in meta:
        return None
    value = _string(meta, key, "pack")
    if value not in outputs:
        raise PackError(f"pack.{key} {value!r} is not an output of [[files]]")
    return value


_PACK_SCRIPTS = ("prepare_dependencies", "warm_checker")


def _pack_script(meta: Mapping[str, Any], key: str, root: Path) -> Path | None:
    """A file of the pack itself (not rendered into plugins) named by ``key``."""
    value = meta.get(key)
    if value is None:
        return None
    rel = check_relative_path(_string(meta, key, "pack"))
    script = (root / rel).resolve()
    if not script.is_relative_to(root) or not script.is_file():
        raise PackError(f"pack.{key} {value!r} is not a file of the pack")
    return script


def load_pack(root: Path) -> TemplatePack:
    """Read ``root/pack.toml`` and check it: keys, commands, files and their paths."""
    root = Path(root).resolve()
    try:
        data = tomllib.loads((root / PACK_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackError(f"no {PACK_FILE} in {root}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PackError(f"cannot read {root / PACK_FILE}: {exc}") from None

    _unknown_keys(data, {"pack", "commands", "files"}, PACK_FILE)
    meta = data.get("pack")
    commands = data.get("commands")
    entries = data.get("files")
    if not isinstance(meta, dict):
        raise PackError("[pack] table is missing")
    if not isinstance(commands, dict):
        raise PackError("[commands] table is missing")
    if not isinstance(entries, list) or not entries:
        raise PackError("[[files]] must list at least one file")
    _unknown_keys(
        meta, {"name", "version", "language", *_OPTIONAL_PACK_PATHS, *_PACK_SCRIPTS}, "pack"
    )
    _unknown_keys(commands, {"install", "build", "test"}, "commands")

    files: list[PackFile] = []
    outputs: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"files[{index}]"
        if not isinstance(entry, dict):
            raise PackError(f"{where} must be a table")
        _unknown_keys(entry, {"template", "output", "each"}, where)
        template = _string(entry, "template", where)
        output = _string(entry, "output", where)
        each = entry.get("each")
        if each is not None and each not in COMPONENT_KINDS:
            raise PackError(f"{where}.each must be one of {', '.join(COMPONENT_KINDS)}")
        check_relative_path(template)
        source = (root / template).resolve()
        if not source.is_relative_to(root):
            raise PackError(f"{where}.template {template!r} leaves the pack")
        if not source.is_file():
            raise PackError(f"{where}.template {template!r} does not exist in {root}")
        if each is not None and KEBAB_PLACEHOLDER not in output:
            raise PackError(f"{where}.output must contain {KEBAB_PLACEHOLDER} when each is set")
        if each is None and KEBAB_PLACEHOLDER in output:
            raise PackError(f"{where}.output uses {KEBAB_PLACEHOLDER} without each")
        # Check the shape with a harmless stand-in for the placeholder.
        check_relative_path(_format_output(output, "x" if each else None))
        if output in outputs:
            raise PackError(f"{where}.output {output!r} is listed twice")
        outputs.add(output)
        files.append(PackFile(template=template, output=output, each=each))

    optional = {key: _optional_path(meta, key, outputs) for key in _OPTIONAL_PACK_PATHS}
    return TemplatePack(
        integration_test=optional["integration_test"],
        runtime_suite=optional["runtime_suite"],
        prepare_dependencies=_pack_script(meta, "prepare_dependencies", root),
        warm_checker=_pack_script(meta, "warm_checker", root),
        name=_string(meta, "name", "pack"),
        version=_string(meta, "version", "pack"),
        language=_string(meta, "language", "pack"),
        root=root,
        install=_argv(commands, "install"),
        build=_argv(commands, "build"),
        test=_argv(commands, "test"),
        files=tuple(files),
    )


# ---------------------------------------------------------------------------- render


def _environment(pack: TemplatePack) -> Environment:
    env = Environment(
        loader=FileSystemLoader(pack.root),
        undefined=StrictUndefined,
        # Output is TypeScript, JSON and Markdown, not HTML: spec text is escaped per
        # context by the js and md filters instead.
        autoescape=False,  # noqa: S701
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        js=js_literal,
        md=md_text,
        md_code=md_code,
        kebab=kebab,
        constant=constant,
        camel=camel,
        pascal=pascal,
    )
    env.globals["fail"] = _fail
    env.globals["sample_input"] = sample_input
    return env


def _fail(message: str) -> None:
    """Called by a template that cannot render this spec into working code."""
    raise PackError(message)


def _extra_dependencies(spec: PluginSpec, allowed: Mapping[str, str]) -> dict[str, str]:
    extra: dict[str, str] = {}
    for name in sorted(spec.dependencies):
        if name not in allowed:
            raise PackError(f"dependency {name!r} is not in the allowed list")
        extra[name] = allowed[name]
    return extra


def lock_satisfies(package_json: Mapping[str, Any], lock: Mapping[str, Any]) -> bool:
    """Whether ``lock`` can install ``package_json`` as it is (``npm ci`` would accept it).

    True when every dependency and devDependency named in package.json is recorded in the
    lock's root package (``packages[""]``) with the same version range and resolved to an
    installed entry (``packages["node_modules/<name>"]``).
    """
    packages = lock.get("packages")
    if not isinstance(packages, Mapping):
        return False
    root = packages.get("")
    if not isinstance(root, Mapping):
        return False
    for section in DEPENDENCY_SECTIONS:
        wanted = package_json.get(section) or {}
        have = root.get(section) or {}
        if not isinstance(wanted, Mapping) or not isinstance(have, Mapping):
            return False
        for name, spec_range in wanted.items():
            if have.get(name) != spec_range:
                return False
            if f"node_modules/{name}" not in packages:
                return False
    return True


def _patch_lock(lock_text: str, package_text: str | None, spec: PluginSpec) -> str:
    try:
        lock = json.loads(lock_text)
    except json.JSONDecodeError as exc:
        raise PackError(f"{PACKAGE_LOCK} in the pack is not valid JSON: {exc}") from None
    if not isinstance(lock, dict) or not isinstance(lock.get("packages"), dict):
        raise PackError(f"{PACKAGE_LOCK} in the pack has no packages")
    root = lock["packages"].get("")
    if not isinstance(root, dict):
        raise PackError(f'{PACKAGE_LOCK} in the pack has no root package ""')
    lock["name"] = spec.name
    lock["version"] = spec.version
    root["name"] = spec.name
    root["version"] = spec.version
    if package_text is not None:
        package = json.loads(package_text)
        # The root records what package.json asks for and the lock can install. Extra
        # packages the lock does not hold are left out: lock_satisfies() then reports
        # that the lock must be regenerated.
        for section in ROOT_SECTIONS:
            wanted = package.get(section) or {}
            kept = {
                name: spec_range
                for name, spec_range in wanted.items()
                if f"node_modules/{name}" in lock["packages"]
                and (root.get(section) or {}).get(name) == spec_range
            }
            if kept:
                root[section] = kept
            else:
                root.pop(section, None)
    return json.dumps(lock, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class PackageMeta:
    """Where the plugin lives, for package.json's author, repository, homepage and bugs."""

    author: str = ""
    repository_url: str = ""
    homepage: str = ""
    bugs_url: str = ""

    @classmethod
    def for_repository(
        cls,
        repository: str | None,
        directory: str,
        web_url: str = "https://github.com",
        *,
        plugin_path: str | None = None,
    ) -> PackageMeta:
        """The metadata of ``plugin_path`` (``plugins/<directory>/`` when not given) in the
        GitHub repository ``owner/name``."""
        if not repository or not re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", repository):
            return cls()
        base = f"{web_url.rstrip('/')}/{repository}"
        return cls(
            author=repository.split("/", 1)[0],
            repository_url=f"git+{base}.git",
            homepage=f"{base}/tree/HEAD/{plugin_path or f'plugins/{directory}'}#readme",
            bugs_url=f"{base}/issues",
        )


def render_pack(
    pack: TemplatePack,
    spec: PluginSpec,
    dest: Path,
    *,
    allowed_dependencies: Mapping[str, str] | None = None,
    package_meta: PackageMeta | None = None,
) -> list[str]:
    """Render every file of ``pack`` for ``spec`` into ``dest``; return the paths written.

    Everything is rendered and checked in memory first, so a failing template writes
    nothing. Paths are POSIX, relative to ``dest``, sorted.
    """
    allowed = DEFAULT_ALLOWED_DEPENDENCIES if allowed_dependencies is None else allowed_dependencies
    env = _environment(pack)
    identifiers = component_identifiers(spec)
    base_context: dict[str, Any] = {
        "spec": spec,
        "pack": pack,
        "plugin_identifier": plugin_identifier(spec.name),
        "identifiers": identifiers,
        "environment": spec.environment,
        "actions": spec.actions,
        "providers": spec.providers,
        "services": spec.services,
        "evaluators": spec.evaluators,
        "extra_dependencies": _extra_dependencies(spec, allowed),
        "package_meta": package_meta or PackageMeta(),
        "samples": {action.name: action_samples(action) for action in spec.actions},
    }

    rendered: dict[str, bytes] = {}

    def add(output: str, content: bytes) -> None:
        rel = check_relative_path(output)
        key = rel.as_posix()
        if key in rendered:
            raise PackError(f"two pack files write {key}")
        rendered[key] = content

    for entry in pack.files:
        components: list[Any] = [None] if entry.each is None else list(getattr(spec, entry.each))
        for component in components:
            name = None if component is None else component.name
            output = _format_output(entry.output, name)
            if not entry.template.endswith(TEMPLATE_SUFFIX):
                source = (pack.root / entry.template).resolve()
                if not source.is_relative_to(pack.root.resolve()) or not source.is_file():
                    raise PackError(f"template {entry.template!r} is missing from the pack")
                add(output, source.read_bytes())
                continue
            context = dict(base_context)
            if component is not None and entry.each is not None:
                context["component"] = component
                context["identifier"] = identifiers[component.name]
                context["kind"] = entry.each
                context.update(component_context(entry.each, component))
            try:
                text = env.get_template(entry.template).render(context)
            except TemplateError as exc:
                raise PackError(f"cannot render {entry.template}: {exc}") from exc
            add(output, text.encode("utf-8"))

    package_text = None
    if PACKAGE_JSON in rendered:
        package_text = rendered[PACKAGE_JSON].decode("utf-8")
        try:
            json.loads(package_text)
        except json.JSONDecodeError as exc:
            raise PackError(f"rendered {PACKAGE_JSON} is not valid JSON: {exc}") from None
    if PACKAGE_LOCK in rendered:
        lock_text = rendered[PACKAGE_LOCK].decode("utf-8")
        rendered[PACKAGE_LOCK] = _patch_lock(lock_text, package_text, spec).encode("utf-8")

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise PackError(f"{dest} exists and is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        for key in sorted(rendered):
            paths.write_bytes(dest, key, rendered[key])  # refuses links on the way
    except paths.PathRefused as exc:
        raise PackError(f"cannot write the plugin: {exc}") from None
    return sorted(rendered)
