"""PluginSpec: the validated description of a plugin, and the rules it must keep.

Everything in a spec comes from a stranger's comment (or a model steered by one), so
the schema is strict: names that become files, identifiers or npm package names are
limited to plain ASCII shapes, lists and texts are bounded, and dependencies come from
an allow-list passed in the validation context (``{"allowed_dependencies": {...}}``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot import paths
from bot.settings import DEFAULT_ALLOWED_DEPENDENCIES

# Bounds of the schema. They are part of what a spec is, so they live with it.
MAX_NAME_LENGTH = 214
MAX_COMPONENT_NAME_LENGTH = 64
MAX_SUMMARY_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 2000
MAX_ACTIONS = 20
MAX_PROVIDERS = 20
MAX_SERVICES = 10
MAX_EVALUATORS = 10
MAX_PARAMETERS = 16
MAX_METHODS = 16
MAX_ENVIRONMENT = 32
MAX_DEPENDENCIES = 16
MAX_EXAMPLES = 8

COMPONENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# validate-npm-package-name's URL-safe shape, lower case, without the '~' npm no
# longer accepts, and never starting with '-' (a directory that reads as an option).
NPM_NAME = re.compile(r"^(?:@([a-z0-9][a-z0-9-._]*)/)?([a-z0-9][a-z0-9-._]*)$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# Control and format characters (C0, C1, bidi overrides, zero-width, line separators)
# other than tab and newline have no business in a description: they hide text.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# Members a Service subclass or any object already has: a method of that name breaks it.
RESERVED_METHOD_NAMES = frozenset(
    [
        "start",
        "stop",
        "constructor",
        "capabilitydescription",
        "servicetype",
        "runtime",
        "config",
        "then",
        "tostring",
        "valueof",
        "hasownproperty",
        "isprototypeof",
        "tolocalestring",
        "propertyisenumerable",
    ]
)
# Service types @elizaos/core registers itself (ServiceTypeRegistry in its types).
CORE_SERVICE_TYPES = frozenset(
    [
        "transcription",
        "video",
        "browser",
        "pdf",
        "aws_s3",
        "web_search",
        "email",
        "tee",
        "task",
        "wallet",
        "lp_pool",
        "token_data",
        "message_service",
        "message",
        "post",
        "unknown",
    ]
)
NODE_BUILTINS = frozenset(
    [
        "assert",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "domain",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "inspector",
        "module",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "repl",
        "stream",
        "string_decoder",
        "sys",
        "timers",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
        "node_modules",
        "favicon.ico",
    ]
)


def _clean_text(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    for char in value:
        if char not in "\n\t" and unicodedata.category(char) in INVISIBLE_CATEGORIES:
            raise ValueError(
                f"must not contain control or invisible characters (U+{ord(char):04X})"
            )
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


Summary = Annotated[str, StringConstraints(max_length=MAX_SUMMARY_LENGTH)]
ComponentName = Annotated[str, StringConstraints(max_length=MAX_COMPONENT_NAME_LENGTH)]


class _Strict(BaseModel):
    # revalidate: a spec validated under one allow-list must not pass another unchecked.
    model_config = ConfigDict(extra="forbid", frozen=True, revalidate_instances="always")

    @field_validator("description", check_fields=False)
    @classmethod
    def _description_is_clean_text(cls, value: str) -> str:
        return _clean_text(value)


class _Named(_Strict):
    name: ComponentName
    description: Summary

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not COMPONENT_NAME.fullmatch(value):
            raise ValueError("must start with a letter and contain only ASCII letters and digits")
        return value


class Parameter(_Named):
    type: Literal["string", "number", "boolean"] = "string"
    required: bool = True


def _unique(names: Iterable[str], what: str) -> None:
    seen: dict[str, str] = {}
    for name in names:
        key = name.lower()
        if key in seen:
            raise ValueError(f"{what} names must be unique: {seen[key]!r} and {name!r}")
        seen[key] = name


class _WithParameters(_Named):
    parameters: tuple[Parameter, ...] = Field(default=(), max_length=MAX_PARAMETERS)

    @field_validator("parameters")
    @classmethod
    def _parameters_unique(cls, value: tuple[Parameter, ...]) -> tuple[Parameter, ...]:
        _unique((p.name for p in value), "parameter")
        return value


class Action(_WithParameters):
    similes: tuple[ComponentName, ...] = Field(default=(), max_length=MAX_EXAMPLES)
    examples: tuple[Summary, ...] = Field(default=(), max_length=MAX_EXAMPLES)

    @field_validator("similes")
    @classmethod
    def _similes_are_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for simile in value:
            if not COMPONENT_NAME.fullmatch(simile):
                raise ValueError(f"simile {simile!r} must be ASCII letters and digits")
        return value

    @field_validator("examples")
    @classmethod
    def _examples_are_text(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_clean_text(v) for v in value)


class Provider(_Named):
    pass


class ServiceMethod(_WithParameters):
    returns: Literal["string", "number", "boolean", "void"] = "string"


class Service(_Named):
    methods: tuple[ServiceMethod, ...] = Field(default=(), max_length=MAX_METHODS)

    @field_validator("name")
    @classmethod
    def _not_a_core_service_type(cls, value: str) -> str:
        if {kebab(value), "_".join(words(value))} & CORE_SERVICE_TYPES:
            raise ValueError(f"{value!r} would take the service type @elizaos/core uses")
        return value

    @field_validator("methods")
    @classmethod
    def _methods_unique(cls, value: tuple[ServiceMethod, ...]) -> tuple[ServiceMethod, ...]:
        _unique((m.name for m in value), "method")
        for method in value:
            if method.name.lower() in RESERVED_METHOD_NAMES:
                raise ValueError(f"method name {method.name!r} is reserved by Service")
        return value


class Evaluator(_Named):
    always_run: bool = False


class EnvironmentVariable(_Strict):
    name: Annotated[str, StringConstraints(max_length=MAX_COMPONENT_NAME_LENGTH)]
    description: Summary
    required: bool = True
    sensitive: bool = False
    # What agentConfig.pluginParameters declares and the plugin's zod schema checks.
    type: Literal["string", "number", "boolean"] = "string"
    default: Annotated[str, StringConstraints(max_length=MAX_SUMMARY_LENGTH)] | None = None

    @model_validator(mode="after")
    def _default_fits(self) -> EnvironmentVariable:
        if self.default is None:
            return self
        if self.required:
            raise ValueError("a required variable has no default (make it optional)")
        if self.sensitive:
            raise ValueError("a sensitive variable must not have a default")
        if self.type == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", self.default):
            raise ValueError(f"default {self.default!r} is not a number")
        if self.type == "boolean" and self.default not in ("true", "false"):
            raise ValueError(f"default {self.default!r} must be 'true' or 'false'")
        _clean_text(self.default)
        return self

    @field_validator("name")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.fullmatch(value):
            raise ValueError("must be upper case letters, digits and underscores (FOO_BAR)")
        return value


class PluginSpec(_Strict):
    """A plugin, described well enough to scaffold it."""

    name: Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
    description: Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
    version: Annotated[str, StringConstraints(max_length=64)] = "0.1.0"
    actions: tuple[Action, ...] = Field(default=(), max_length=MAX_ACTIONS)
    providers: tuple[Provider, ...] = Field(default=(), max_length=MAX_PROVIDERS)
    services: tuple[Service, ...] = Field(default=(), max_length=MAX_SERVICES)
    evaluators: tuple[Evaluator, ...] = Field(default=(), max_length=MAX_EVALUATORS)
    dependencies: tuple[str, ...] = Field(default=(), max_length=MAX_DEPENDENCIES)
    environment: tuple[EnvironmentVariable, ...] = Field(default=(), max_length=MAX_ENVIRONMENT)

    @field_validator("name")
    @classmethod
    def _npm_name(cls, value: str) -> str:
        check_npm_name(value)
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER.fullmatch(value):
            raise ValueError("must be a semantic version such as 0.1.0")
        return value

    @field_validator("dependencies")
    @classmethod
    def _allowed_dependencies(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        allowed = _allowed_from(info.context)
        for dep in value:
            if dep not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{dep!r} is not an allowed dependency (allowed: {names})")
        if len(set(value)) != len(value):
            raise ValueError("dependencies must not repeat")
        return value

    @field_validator("environment")
    @classmethod
    def _environment_unique(
        cls, value: tuple[EnvironmentVariable, ...]
    ) -> tuple[EnvironmentVariable, ...]:
        _unique((v.name for v in value), "environment variable")
        return value

    @model_validator(mode="after")
    def _components_unique_and_present(self) -> PluginSpec:
        components = self.components()
        if not components:
            raise ValueError("a plugin needs at least one action, provider, service or evaluator")
        # Case-insensitive: kebab file names and identifiers then cannot collide either.
        try:
            _unique((c.name for _, c in components), "component")
        except ValueError as exc:
            raise ValueError(f"{exc} (names must be unique across the plugin)") from None
        return self

    def components(self) -> list[tuple[str, _Named]]:
        out: list[tuple[str, _Named]] = []
        out += [("action", a) for a in self.actions]
        out += [("provider", p) for p in self.providers]
        out += [("service", s) for s in self.services]
        out += [("evaluator", e) for e in self.evaluators]
        return out

    @property
    def directory_name(self) -> str:
        """The folder the plugin lives in: the package name without its scope."""
        return self.name.rsplit("/", 1)[-1]

    def directory_in(self, root: Path) -> Path:
        """The plugin's directory under ``root``, checked to stay inside it."""
        return safe_child(root, self.directory_name)


def _allowed_from(context: Any) -> Mapping[str, str]:
    if isinstance(context, Mapping) and "allowed_dependencies" in context:
        allowed: Mapping[str, str] = context["allowed_dependencies"]
        return allowed
    return DEFAULT_ALLOWED_DEPENDENCIES


def check_npm_name(value: str) -> None:
    """Raise ValueError unless ``value`` is a name npm would publish."""
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters")
    if not value.isascii():
        raise ValueError("must be plain ASCII (no look-alike characters)")
    if value != value.lower():
        raise ValueError("must be lower case")
    if any(c in value for c in " \\\x00\t\n"):
        raise ValueError("must not contain spaces, backslashes or NUL")
    if ".." in value:
        raise ValueError("must not contain '..'")
    if any(part[:1] in {".", "_", "-", "~"} for part in value.lstrip("@").split("/")):
        raise ValueError("must not start with '.', '_', '-' or '~'")
    match = NPM_NAME.fullmatch(value)
    if not match:
        raise ValueError(
            "must be an npm package name: lower case letters, digits, '-', '.', '_', "
            "optionally '@scope/' in front"
        )
    if match.group(2) in NODE_BUILTINS:
        raise ValueError(f"{match.group(2)!r} is reserved by Node.js")
    try:
        paths.check_segment(value.rsplit("/", 1)[-1])  # it names the plugin's folder
    except paths.PathRefused as exc:
        raise ValueError(f"cannot name the plugin's folder: {exc}") from None


def safe_child(root: Path, name: str) -> Path:
    """``root/name`` for a name the one path rule (bot/paths.py) accepts as one segment."""
    if not name or "/" in name:
        raise ValueError(f"unsafe directory name {name!r}")
    try:
        return paths.child_dir(root, name)
    except paths.PathRefused as exc:
        raise ValueError(f"unsafe directory name {name!r}: {exc}") from None


_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(name: str) -> list[str]:
    """Split an identifier into lower-case words: GetHTTPData -> get, http, data."""
    return [w.lower() for w in _WORD_BOUNDARY.split(name) if w]


def kebab(name: str) -> str:
    return "-".join(words(name))


def constant(name: str) -> str:
    return "_".join(words(name)).upper()


def pascal(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in words(name))


def camel(name: str) -> str:
    p = pascal(name)
    return p[:1].lower() + p[1:]


class SpecError(ValueError):
    """A spec that failed validation, with one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid plugin spec:\n" + render_problems(problems))


def render_problems(problems: list[str]) -> str:
    return "\n".join(f"- {p}" for p in problems)


def problems_from(error: ValidationError) -> list[str]:
    out: list[str] = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "spec"
        message = str(item["msg"]).removeprefix("Value error, ")
        out.append(f"{where}: {message}")
    return out


def validate_spec(data: Any, allowed_dependencies: Mapping[str, str] | None = None) -> PluginSpec:
    """Validate raw data into a PluginSpec, raising SpecError with every problem."""
    if allowed_dependencies is None:
        allowed_dependencies = DEFAULT_ALLOWED_DEPENDENCIES
    context = {"allowed_dependencies": allowed_dependencies}
    try:
        return PluginSpec.model_validate(data, context=context)
    except ValidationError as exc:
        raise SpecError(problems_from(exc)) from None
