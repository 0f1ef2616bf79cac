"""PluginSpec validation against valid and hostile input.

The last section pins hardening of bot/spec.py that once had to be worked around
elsewhere: re-validated instances, option-like and '~' names, invisible characters,
reserved Service members and frozen, tuple-valued specs.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.settings import DEFAULT_ALLOWED_DEPENDENCIES
from bot.spec.schema import (
    CORE_SERVICE_TYPES,
    MAX_ACTIONS,
    MAX_COMPONENT_NAME_LENGTH,
    MAX_DEPENDENCIES,
    MAX_DESCRIPTION_LENGTH,
    MAX_ENVIRONMENT,
    MAX_EVALUATORS,
    MAX_EXAMPLES,
    MAX_METHODS,
    MAX_NAME_LENGTH,
    MAX_PARAMETERS,
    MAX_PROVIDERS,
    MAX_SERVICES,
    MAX_SUMMARY_LENGTH,
    RESERVED_METHOD_NAMES,
    PluginSpec,
    SpecError,
    camel,
    check_npm_name,
    constant,
    kebab,
    pascal,
    safe_child,
    validate_spec,
    words,
)


def base(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "plugin-weather",
        "description": "Weather for the agent.",
        "actions": [
            {
                "name": "GetWeather",
                "description": "Get the weather.",
                "parameters": [{"name": "city", "description": "The city."}],
            }
        ],
    }
    data.update(changes)
    return data


def full() -> dict[str, Any]:
    return base(
        version="1.2.3",
        providers=[{"name": "WeatherProvider", "description": "Current weather."}],
        services=[
            {
                "name": "WeatherService",
                "description": "Polls.",
                "methods": [
                    {
                        "name": "refresh",
                        "description": "Refresh.",
                        "returns": "void",
                        "parameters": [{"name": "force", "description": "F.", "type": "boolean"}],
                    }
                ],
            }
        ],
        evaluators=[{"name": "WeatherEvaluator", "description": "Judges.", "always_run": True}],
        dependencies=["zod", "date-fns"],
        environment=[
            {"name": "WEATHER_API_KEY", "description": "Key.", "sensitive": True},
            {"name": "WEATHER_API_URL", "description": "URL.", "required": False},
        ],
    )


def problems(data: Any, allowed: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_spec(data, allowed)
    assert str(info.value).startswith("invalid plugin spec:\n- ")
    return info.value.problems


def only_problem(data: Any, allowed: dict[str, str] | None = None) -> str:
    found = problems(data, allowed)
    assert len(found) == 1, found
    return found[0]


# ----------------------------------------------------------------- valid specs


def test_full_spec_is_valid_and_round_trips() -> None:
    spec = validate_spec(full())
    assert spec.version == "1.2.3"
    assert [kind for kind, _ in spec.components()] == [
        "action",
        "provider",
        "service",
        "evaluator",
    ]
    assert spec.actions[0].parameters[0].type == "string"
    assert spec.actions[0].parameters[0].required is True
    assert spec.environment[1].required is False
    assert validate_spec(spec.model_dump()) == spec
    assert validate_spec(spec.model_dump(mode="json")) == spec


def test_defaults() -> None:
    spec = validate_spec(base())
    assert spec.version == "0.1.0"
    assert (spec.providers, spec.services, spec.evaluators) == ((), (), ())
    assert (spec.dependencies, spec.environment) == ((), ())


def test_descriptions_are_stripped() -> None:
    spec = validate_spec(base(description="  Weather\tfor\nthe agent.  "))
    assert spec.description == "Weather\tfor\nthe agent."


@pytest.mark.parametrize(
    "name",
    [
        "plugin-weather",
        "@acme/plugin-weather",
        "a",
        "plugin.weather",
        "plugin_weather",
        "plugin-.weather_x-",
        "0plugin",
        "fs-extra",
        "@fs/plugin",
        "p" * MAX_NAME_LENGTH,
        "@" + "s" * 100 + "/" + "p" * (MAX_NAME_LENGTH - 102),
    ],
)
def test_valid_package_names(name: str) -> None:
    check_npm_name(name)
    assert validate_spec(base(name=name)).name == name


# ----------------------------------------------------------------- hostile names


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil", "must not contain '..'"),
        ("@scope/../x", "must not contain '..'"),
        ("..", "must not contain '..'"),
        ("plugin..x", "must not contain '..'"),
        # A leading '.', '_', '-' or '~' of the name or of either scoped part is named
        # before the general shape is checked.
        (".", "must not start with '.', '_', '-' or '~'"),
        (".hidden", "must not start with '.', '_', '-' or '~'"),
        ("_x", "must not start with '.', '_', '-' or '~'"),
        ("-x", "must not start with '.', '_', '-' or '~'"),
        ("~x", "must not start with '.', '_', '-' or '~'"),
        ("@.scope/x", "must not start with '.', '_', '-' or '~'"),
        ("@_scope/x", "must not start with '.', '_', '-' or '~'"),
        ("@-scope/x", "must not start with '.', '_', '-' or '~'"),
        ("@scope/.x", "must not start with '.', '_', '-' or '~'"),
        ("@scope/_x", "must not start with '.', '_', '-' or '~'"),
        ("@scope/~x", "must not start with '.', '_', '-' or '~'"),
        ("plugin~weather", "must be an npm package name"),
        ("a/b/c", "must be an npm package name"),
        ("a/b", "must be an npm package name"),
        ("/abs", "must be an npm package name"),
        ("@scope/", "must be an npm package name"),
        ("@/x", "must be an npm package name"),
        ("foo\\bar", "must not contain spaces, backslashes or NUL"),
        ("foo\x00bar", "must not contain spaces, backslashes or NUL"),
        ("foo bar", "must not contain spaces, backslashes or NUL"),
        (" plugin", "must not contain spaces, backslashes or NUL"),
        ("plugin\n", "must not contain spaces, backslashes or NUL"),
        ("plugin\t", "must not contain spaces, backslashes or NUL"),
        ("plugin\r", "must be an npm package name"),
        ("Plugin-Weather", "must be lower case"),
        ("@Scope/x", "must be lower case"),
        ("plugin-w\u0435ather", "must be plain ASCII"),  # Cyrillic small ie
        ("\uff50\uff4c\uff55\uff47\uff49\uff4e", "must be plain ASCII"),  # fullwidth plugin
        ("plugin-\u0131", "must be plain ASCII"),  # dotless i
        ("plugin\u200b", "must be plain ASCII"),  # zero-width space
        ("p" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH} characters"),
        ("@s/" + "p" * (MAX_NAME_LENGTH - 2), f"at most {MAX_NAME_LENGTH} characters"),
        ("", "must not be empty"),
        ("fs", "'fs' is reserved by Node.js"),
        ("http", "'http' is reserved by Node.js"),
        ("child_process", "'child_process' is reserved by Node.js"),
        ("node_modules", "'node_modules' is reserved by Node.js"),
        ("favicon.ico", "'favicon.ico' is reserved by Node.js"),
        # stricter than npm, which allows builtin names under a scope
        ("@acme/fs", "'fs' is reserved by Node.js"),
        ("plugin:x", "must be an npm package name"),
        ("node:fs", "must be an npm package name"),
        ("plugin?x", "must be an npm package name"),
        ("plugin$(id)", "must be an npm package name"),
        ("plugin;rm", "must be an npm package name"),
    ],
)
def test_hostile_package_names(name: str, message: str) -> None:
    problem = only_problem(base(name=name))
    assert problem.startswith("name: ")
    assert message in problem
    with pytest.raises(ValueError, match=r"."):
        check_npm_name(name)


def test_package_name_must_be_text() -> None:
    assert only_problem(base(name=123)) == "name: Input should be a valid string"
    assert only_problem(base(name=None)) == "name: Input should be a valid string"


# ----------------------------------------------------------------- component names


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Get_Weather", "must start with a letter and contain only ASCII letters and digits"),
        ("get-weather", "must start with a letter"),
        ("Get Weather", "must start with a letter"),
        ("1GetWeather", "must start with a letter"),
        ("_private", "must start with a letter"),
        ("W\u00e9ather", "must start with a letter"),
        ("\u0412eather", "must start with a letter"),  # Cyrillic capital ve
        ("\uff27et", "must start with a letter"),  # fullwidth G
        ("Get\u200bWeather", "must start with a letter"),
        ("GetWeather\n", "must start with a letter"),
        ("", "must start with a letter"),
        ("__proto__", "must start with a letter"),
        ("G" * (MAX_COMPONENT_NAME_LENGTH + 1), "at most 64 characters"),
    ],
)
@pytest.mark.parametrize("where", ["actions", "providers", "services", "evaluators"])
def test_hostile_component_names(name: str, message: str, where: str) -> None:
    data = base(**{where: [{"name": name, "description": "x"}]})
    if where != "actions":
        data["actions"] = []
    problem = only_problem(data)
    assert problem.startswith(f"{where}.0.name: ")
    assert message in problem


@pytest.mark.parametrize(
    ("field", "location"),
    [
        ("parameters", "actions.0.parameters.0.name"),
        ("similes", "actions.0.similes"),
    ],
)
def test_hostile_names_inside_actions(field: str, location: str) -> None:
    item: Any = {"name": "bad name", "description": "x"} if field == "parameters" else "bad name"
    data = base(actions=[{"name": "Go", "description": "go", field: [item]}])
    assert only_problem(data).startswith(f"{location}: ")


def test_method_names_are_checked() -> None:
    data = base(
        services=[
            {"name": "S", "description": "x", "methods": [{"name": "do-it", "description": "x"}]}
        ]
    )
    assert only_problem(data).startswith("services.0.methods.0.name: must start with a letter")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("actions", "GetWeather"), ("actions", "getweather")),
        (("actions", "GetWeather"), ("actions", "GETWEATHER")),
        (("actions", "Weather"), ("providers", "weather")),
        (("providers", "WeatherInfo"), ("services", "Weatherinfo")),
        (("services", "Poll"), ("evaluators", "POLL")),
        (("actions", "GetHTTPData"), ("evaluators", "GetHttpData")),
    ],
)
def test_component_names_unique_case_insensitive_and_across_kinds(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    data = base(actions=[])
    for kind, name in (first, second):
        data.setdefault(kind, []).append({"name": name, "description": "x"})
    problem = only_problem(data)
    assert problem == (
        f"spec: component names must be unique: {first[1]!r} and {second[1]!r} "
        "(names must be unique across the plugin)"
    )


def test_kebab_file_names_of_unique_components_differ() -> None:
    # kebab forms become file names; a case-insensitive match is already refused, and a
    # kebab collision implies one (kebab is lower case joined by '-').
    names = ["GetHTTPData", "GetHttpDatum", "ABc", "AbC", "Abc1", "Abc"]
    seen: dict[str, str] = {}
    for name in names:
        key = kebab(name)
        if key in seen:
            assert seen[key].lower() == name.lower()
        seen[key] = name


def test_parameters_unique_case_insensitive() -> None:
    data = base(
        actions=[
            {
                "name": "Go",
                "description": "go",
                "parameters": [
                    {"name": "city", "description": "x"},
                    {"name": "City", "description": "y"},
                ],
            }
        ]
    )
    assert only_problem(data) == (
        "actions.0.parameters: parameter names must be unique: 'city' and 'City'"
    )


RESERVED_METHODS = [
    "runtime",
    "config",
    "then",
    "toString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "toLocaleString",
    "propertyIsEnumerable",
    "start",
    "stop",
    "constructor",
    "capabilityDescription",
    "serviceType",
]


def test_reserved_method_names_are_the_service_and_object_members() -> None:
    assert {m.lower() for m in RESERVED_METHODS} == RESERVED_METHOD_NAMES


@pytest.mark.parametrize(
    "method",
    [
        *RESERVED_METHODS,
        # case-insensitive: camelCase in generated code would land on the member anyway
        "Stop",
        "ServiceType",
        "Runtime",
        "TOSTRING",
        "Then",
    ],
)
def test_reserved_service_method_names(method: str) -> None:
    data = base(
        services=[
            {"name": "S", "description": "x", "methods": [{"name": method, "description": "x"}]}
        ]
    )
    assert only_problem(data) == (
        f"services.0.methods: method name {method!r} is reserved by Service"
    )


@pytest.mark.parametrize(
    "method", ["restart", "startTimer", "runtimeInfo", "stopAll", "configure", "thenWhat"]
)
def test_method_names_containing_reserved_words_are_fine(method: str) -> None:
    data = base(
        services=[
            {"name": "S", "description": "x", "methods": [{"name": method, "description": "x"}]}
        ]
    )
    assert validate_spec(data).services[0].methods[0].name == method


# Each core type written as a component name: its kebab or snake form is the type.
CORE_TYPE_NAMES = {
    "Transcription": "transcription",
    "Video": "video",
    "Browser": "browser",
    "PDF": "pdf",
    "AwsS3": "aws_s3",
    "WebSearch": "web_search",
    "Email": "email",
    "EMAIL": "email",
    "Tee": "tee",
    "Task": "task",
    "Wallet": "wallet",
    "LpPool": "lp_pool",
    "TokenData": "token_data",
    "MessageService": "message_service",
    "Message": "message",
    "Post": "post",
    "Unknown": "unknown",
}


def test_core_type_names_cover_every_core_service_type() -> None:
    assert set(CORE_TYPE_NAMES.values()) == CORE_SERVICE_TYPES
    for name, service_type in CORE_TYPE_NAMES.items():
        assert service_type in {kebab(name), "_".join(words(name))}


@pytest.mark.parametrize("name", sorted(CORE_TYPE_NAMES))
def test_service_names_that_take_a_core_service_type_are_refused(name: str) -> None:
    data = base(services=[{"name": name, "description": "x"}])
    assert only_problem(data) == (
        f"services.0.name: {name!r} would take the service type @elizaos/core uses"
    )


@pytest.mark.parametrize(
    "name", ["EmailService", "WebSearcher", "MessageQueue", "PostService", "Mail", "Emails"]
)
def test_service_names_near_core_service_types_are_fine(name: str) -> None:
    spec = validate_spec(base(services=[{"name": name, "description": "x"}]))
    assert spec.services[0].name == name


@pytest.mark.parametrize("kind", ["actions", "providers", "evaluators"])
def test_core_service_type_names_are_fine_for_other_components(kind: str) -> None:
    data = base(actions=[])
    data[kind] = [{"name": "Email", "description": "x"}]
    assert validate_spec(data).components()[0][1].name == "Email"


def test_service_methods_unique() -> None:
    methods = [{"name": "refresh", "description": "x"}, {"name": "Refresh", "description": "y"}]
    data = base(services=[{"name": "S", "description": "x", "methods": methods}])
    assert only_problem(data) == (
        "services.0.methods: method names must be unique: 'refresh' and 'Refresh'"
    )


def test_a_plugin_needs_a_component() -> None:
    assert only_problem(base(actions=[])) == (
        "spec: a plugin needs at least one action, provider, service or evaluator"
    )


# ----------------------------------------------------------------- environment


@pytest.mark.parametrize("name", ["WEATHER_API_KEY", "A", "A1", "A_1_B", "X__Y_"])
def test_valid_env_names(name: str) -> None:
    spec = validate_spec(base(environment=[{"name": name, "description": "x"}]))
    assert spec.environment[0].name == name
    assert spec.environment[0].required is True
    assert spec.environment[0].sensitive is False


@pytest.mark.parametrize(
    "name",
    [
        "weather_api_key",
        "Weather_Key",
        "1KEY",
        "_KEY",
        "KEY-NAME",
        "KEY NAME",
        "KEY=1",
        "KEY\n",
        "KEY\x00",
        "$(id)",
        "\uff2b\uff25\uff39",  # fullwidth KEY
        "\u041a\u0415\u0423",  # Cyrillic KEY look-alike
        "",
        "K" * 65,
    ],
)
def test_hostile_env_names(name: str) -> None:
    problem = only_problem(base(environment=[{"name": name, "description": "x"}]))
    assert problem.startswith("environment.0.name: ")


def test_env_names_unique() -> None:
    data = base(environment=[{"name": "KEY", "description": "x"}] * 2)
    assert only_problem(data) == (
        "environment: environment variable names must be unique: 'KEY' and 'KEY'"
    )


# ----------------------------------------------------------------- versions


@pytest.mark.parametrize(
    "version",
    [
        "0.1.0",
        "1.0.0",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0+build.5",
        "1.0.0-rc.1+sha.abc",
    ],
)
def test_valid_versions(version: str) -> None:
    assert validate_spec(base(version=version)).version == version


@pytest.mark.parametrize(
    "version",
    [
        "1.0",
        "1",
        "v1.0.0",
        "01.0.0",
        "1.02.0",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0+",
        "1.0.0 ",
        "1.0.0\n",
        "",
        "latest",
        "^1.0.0",
        "1.0.0-" + "a" * 60,
    ],
)
def test_hostile_versions(version: str) -> None:
    problem = only_problem(base(version=version))
    assert problem.startswith("version: ")


def test_version_must_be_text() -> None:
    assert only_problem(base(version=1.0)) == "version: Input should be a valid string"


# ----------------------------------------------------------------- dependencies


def test_default_allow_list() -> None:
    spec = validate_spec(base(dependencies=sorted(DEFAULT_ALLOWED_DEPENDENCIES)))
    assert spec.dependencies == tuple(sorted(DEFAULT_ALLOWED_DEPENDENCIES))
    assert only_problem(base(dependencies=["left-pad"])) == (
        "dependencies: 'left-pad' is not an allowed dependency "
        "(allowed: date-fns, lru-cache, uuid, zod)"
    )


def test_custom_allow_list() -> None:
    allowed = {"left-pad": "^1.3.0"}
    assert validate_spec(base(dependencies=["left-pad"]), allowed).dependencies == ("left-pad",)
    assert only_problem(base(dependencies=["zod"]), allowed) == (
        "dependencies: 'zod' is not an allowed dependency (allowed: left-pad)"
    )


@pytest.mark.parametrize("dep", ["zod", "left-pad", "../x", "file:../x", "git+https://x/y"])
def test_empty_allow_list_refuses_everything(dep: str) -> None:
    assert only_problem(base(dependencies=[dep]), {}) == (
        f"dependencies: {dep!r} is not an allowed dependency (allowed: none)"
    )
    assert validate_spec(base(), {}).dependencies == ()


def test_dependencies_do_not_repeat() -> None:
    assert only_problem(base(dependencies=["zod", "zod"])) == (
        "dependencies: dependencies must not repeat"
    )


def test_allow_list_in_the_model_context() -> None:
    spec = PluginSpec.model_validate(
        base(dependencies=["left-pad"]), context={"allowed_dependencies": {"left-pad": "1"}}
    )
    assert spec.dependencies == ("left-pad",)


# ----------------------------------------------------------------- bounds


def _n(item: Any, n: int) -> list[Any]:
    return [copy.deepcopy(item) for _ in range(n)]


def _named(prefix: str, n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{i}", "description": "x", **extra} for i in range(n)]


@pytest.mark.parametrize(
    ("where", "limit", "make"),
    [
        ("actions", MAX_ACTIONS, lambda n: base(actions=_named("A", n))),
        ("providers", MAX_PROVIDERS, lambda n: base(providers=_named("P", n))),
        ("services", MAX_SERVICES, lambda n: base(services=_named("S", n))),
        ("evaluators", MAX_EVALUATORS, lambda n: base(evaluators=_named("E", n))),
        (
            "environment",
            MAX_ENVIRONMENT,
            lambda n: base(environment=[{"name": f"K{i}", "description": "x"} for i in range(n)]),
        ),
        (
            "dependencies",
            MAX_DEPENDENCIES,
            lambda n: base(dependencies=[f"d{i}" for i in range(n)]),
        ),
        (
            "actions.0.parameters",
            MAX_PARAMETERS,
            lambda n: base(
                actions=[{"name": "Go", "description": "x", "parameters": _named("p", n)}]
            ),
        ),
        (
            "actions.0.similes",
            MAX_EXAMPLES,
            lambda n: base(
                actions=[{"name": "Go", "description": "x", "similes": [f"S{i}" for i in range(n)]}]
            ),
        ),
        (
            "actions.0.examples",
            MAX_EXAMPLES,
            lambda n: base(actions=[{"name": "Go", "description": "x", "examples": ["e"] * n}]),
        ),
        (
            "services.0.methods",
            MAX_METHODS,
            lambda n: base(services=[{"name": "S", "description": "x", "methods": _named("m", n)}]),
        ),
    ],
)
def test_list_bounds(where: str, limit: int, make: Any) -> None:
    allowed = {f"d{i}": "1" for i in range(limit + 1)}
    validate_spec(make(limit), allowed)
    problem = only_problem(make(limit + 1), allowed)
    assert problem.startswith(f"{where}: Tuple should have at most {limit} items")


def test_huge_lists_are_refused_with_the_bound() -> None:
    # How long this takes: benchmarks/describe_bounds.py.
    problem = only_problem(base(actions=_named("A", 1) * 200_000))
    assert problem.startswith(f"actions: Tuple should have at most {MAX_ACTIONS} items")


@pytest.mark.parametrize(
    ("data", "where", "limit"),
    [
        (
            base(description="x" * (MAX_DESCRIPTION_LENGTH + 1)),
            "description",
            MAX_DESCRIPTION_LENGTH,
        ),
        (
            base(actions=[{"name": "Go", "description": "x" * (MAX_SUMMARY_LENGTH + 1)}]),
            "actions.0.description",
            MAX_SUMMARY_LENGTH,
        ),
        (
            base(
                actions=[
                    {"name": "Go", "description": "x", "examples": ["x" * (MAX_SUMMARY_LENGTH + 1)]}
                ]
            ),
            "actions.0.examples.0",
            MAX_SUMMARY_LENGTH,
        ),
        (
            base(environment=[{"name": "K", "description": "x" * (MAX_SUMMARY_LENGTH + 1)}]),
            "environment.0.description",
            MAX_SUMMARY_LENGTH,
        ),
        (base(version="1.0.0-" + "a" * 60), "version", 64),
    ],
)
def test_text_bounds(data: dict[str, Any], where: str, limit: int) -> None:
    assert only_problem(data) == f"{where}: String should have at most {limit} characters"


def test_longest_texts_are_accepted() -> None:
    validate_spec(base(description="x" * MAX_DESCRIPTION_LENGTH))
    validate_spec(
        base(
            actions=[
                {"name": "G" * MAX_COMPONENT_NAME_LENGTH, "description": "x" * MAX_SUMMARY_LENGTH}
            ]
        )
    )


# ----------------------------------------------------------------- control characters


@pytest.mark.parametrize(
    "char",
    [
        # C0 and DEL (a lone "\r" is a line break and becomes "\n" instead)
        "\x00",
        "\x01",
        "\x08",
        "\x0b",
        "\x0c",
        "\x1b",
        "\x1f",
        "\x7f",
        # C1
        "\x85",
        "\x9b",
        # line and paragraph separators
        "\u2028",
        "\u2029",
        # bidi overrides and isolates, zero-width and byte-order marks
        "\u202e",
        "\u2066",
        "\u200b",
        "\u200d",
        "\ufeff",
        # private use
        "\ue000",
    ],
)
@pytest.mark.parametrize(
    ("where", "make"),
    [
        ("description", lambda t: base(description=t)),
        ("actions.0.description", lambda t: base(actions=[{"name": "Go", "description": t}])),
        (
            "actions.0.examples",
            lambda t: base(actions=[{"name": "Go", "description": "x", "examples": [t]}]),
        ),
        (
            "actions.0.parameters.0.description",
            lambda t: base(
                actions=[
                    {
                        "name": "Go",
                        "description": "x",
                        "parameters": [{"name": "p", "description": t}],
                    }
                ]
            ),
        ),
        ("providers.0.description", lambda t: base(providers=[{"name": "P", "description": t}])),
        (
            "environment.0.description",
            lambda t: base(environment=[{"name": "K", "description": t}]),
        ),
    ],
)
def test_control_characters_in_texts(char: str, where: str, make: Any) -> None:
    assert only_problem(make(f"before{char}after")) == (
        f"{where}: must not contain control or invisible characters (U+{ord(char):04X})"
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_texts(text: str) -> None:
    assert only_problem(base(description=text)) == "description: must not be empty"


def test_tabs_and_newlines_are_fine() -> None:
    assert validate_spec(base(description="a\tb\nc")).description == "a\tb\nc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GitHub comment bodies use CRLF; old Mac text a lone CR.
        ("line one\r\nline two", "line one\nline two"),
        ("line one\rline two", "line one\nline two"),
        ("a\r\n\r\nb\r", "a\n\nb"),
        ("\r\n  padded\r\n", "padded"),
    ],
)
def test_crlf_and_cr_become_newlines(text: str, expected: str) -> None:
    spec = validate_spec(
        base(
            description=text,
            actions=[
                {
                    "name": "Go",
                    "description": text,
                    "examples": [text],
                    "parameters": [{"name": "p", "description": text}],
                }
            ],
            environment=[{"name": "K", "description": text}],
        )
    )
    action = spec.actions[0]
    assert spec.description == expected
    assert action.description == expected
    assert action.examples == (expected,)
    assert action.parameters[0].description == expected
    assert spec.environment[0].description == expected
    assert "\r" not in spec.model_dump_json()


def test_only_line_breaks_is_empty() -> None:
    assert only_problem(base(description="\r\n\r")) == "description: must not be empty"


def test_lone_surrogates_are_refused() -> None:
    problem = only_problem(base(description="bad \ud800 text"))
    assert problem.startswith("description: ")


# ----------------------------------------------------------------- unknown fields


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (base(script="rm -rf /"), "script"),
        (base(postinstall="curl x | sh"), "postinstall"),
        (
            base(actions=[{"name": "Go", "description": "x", "handler": "eval(x)"}]),
            "actions.0.handler",
        ),
        (
            base(
                actions=[
                    {
                        "name": "Go",
                        "description": "x",
                        "parameters": [{"name": "p", "description": "x", "default": 1}],
                    }
                ]
            ),
            "actions.0.parameters.0.default",
        ),
        (base(providers=[{"name": "P", "description": "x", "code": "x"}]), "providers.0.code"),
        (
            base(environment=[{"name": "K", "description": "x", "value": "secret"}]),
            "environment.0.value",
        ),
        (base(__proto__={}), "__proto__"),
    ],
)
def test_unknown_fields_are_refused(data: dict[str, Any], where: str) -> None:
    assert only_problem(data) == f"{where}: Extra inputs are not permitted"


@pytest.mark.parametrize("data", [[], None, "plugin-weather", 42, [("name", "x")]])
def test_non_mappings_are_refused(data: Any) -> None:
    assert (
        only_problem(data) == "spec: Input should be a valid dictionary or instance of PluginSpec"
    )


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("type", "object", "actions.0.parameters.0.type"),
        ("type", "any", "actions.0.parameters.0.type"),
        ("required", "sometimes", "actions.0.parameters.0.required"),
    ],
)
def test_parameter_fields(field: str, value: Any, where: str) -> None:
    param = {"name": "p", "description": "x", field: value}
    data = base(actions=[{"name": "Go", "description": "x", "parameters": [param]}])
    assert only_problem(data).startswith(f"{where}: ")


# ----------------------------------------------------------------- collected errors


def test_errors_are_collected_per_field() -> None:
    data = {
        "name": "../evil",
        "description": "bad\x00",
        "version": "one",
        "actions": [
            {"name": "Get_Weather", "description": ""},
            {"name": "Ok", "description": "x", "parameters": [{"name": "1p", "description": "x"}]},
        ],
        "environment": [{"name": "lower", "description": "x"}],
        "dependencies": ["left-pad"],
        "surprise": 1,
    }
    found = problems(data)
    assert sorted(p.split(": ", 1)[0] for p in found) == sorted(
        [
            "name",
            "description",
            "version",
            "actions.0.name",
            "actions.0.description",
            "actions.1.parameters.0.name",
            "environment.0.name",
            "dependencies",
            "surprise",
        ]
    )
    rendered = str(SpecError(found))
    for problem in found:
        assert f"\n- {problem}" in rendered


# ----------------------------------------------------------------- naming helpers


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("GetHTTPData", ["get", "http", "data"]),
        ("getWeather", ["get", "weather"]),
        ("ReportCurrentTemperature", ["report", "current", "temperature"]),
        ("A", ["a"]),
        ("Get2FACode", ["get2", "fa", "code"]),
    ],
)
def test_words(name: str, parts: list[str]) -> None:
    assert words(name) == parts
    assert kebab(name) == "-".join(parts)
    assert constant(name) == "_".join(parts).upper()
    assert pascal(name) == "".join(p[:1].upper() + p[1:] for p in parts)
    assert camel(name)[:1].islower()


# ----------------------------------------------------------------- directories

NAME_PART = r"[a-z0-9][a-z0-9._-]{0,40}"
valid_names = st.from_regex(rf"(@{NAME_PART}/)?{NAME_PART}", fullmatch=True).filter(
    lambda n: _is_valid_name(n)
)


def _is_valid_name(name: str) -> bool:
    try:
        check_npm_name(name)
    except ValueError:
        return False
    return True


@settings(max_examples=300)
@given(valid_names)
def test_directory_stays_inside_root(name: str) -> None:
    root = Path("/tmp/plugin-bot-test-root")
    spec = validate_spec(base(name=name))
    target = spec.directory_in(root)
    assert target.parent == root.resolve()
    assert target.name == name.rsplit("/", 1)[-1]
    assert ".." not in target.parts


def test_directory_of_scoped_name_is_the_bare_name(tmp_path: Path) -> None:
    spec = validate_spec(base(name="@acme/plugin-weather"))
    assert spec.directory_name == "plugin-weather"
    assert spec.directory_in(tmp_path) == tmp_path.resolve() / "plugin-weather"


def test_directory_refuses_a_symlink_leading_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "plugin-weather")
    spec = validate_spec(base())
    with pytest.raises(ValueError, match="leaves"):
        spec.directory_in(root)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\\b", "a\x00b", "/"])
def test_safe_child_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe directory name"):
        safe_child(tmp_path, name)


# ----------------------------------------------------------------- hardening


def test_validating_an_instance_applies_the_allow_list() -> None:
    spec = validate_spec(base(dependencies=["zod"]))
    assert validate_spec(spec) == spec
    assert problems(spec, {}) == [
        "dependencies: 'zod' is not an allowed dependency (allowed: none)"
    ]


def test_validating_an_instance_checks_it_again() -> None:
    # model_copy(update=...) skips validation; validate_spec must not trust the result.
    spec = validate_spec(base())
    tampered = spec.model_copy(update={"name": "../evil", "description": "bad\u202etext"})
    assert sorted(problems(tampered)) == [
        "description: must not contain control or invisible characters (U+202E)",
        "name: must not contain '..'",
    ]


@pytest.mark.parametrize("name", ["--help", "-rf", "-", "@scope/--version", "@-/x"])
def test_names_cannot_look_like_options(name: str) -> None:
    assert only_problem(base(name=name)) == "name: must not start with '.', '_', '-' or '~'"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("~", "must not start with '.', '_', '-' or '~'"),
        ("~plugin", "must not start with '.', '_', '-' or '~'"),
        ("plugin~x", "must be an npm package name"),
        ("@acme/plugin~x", "must be an npm package name"),
    ],
)
def test_names_with_tilde_are_refused(name: str, message: str) -> None:
    problem = only_problem(base(name=name))
    assert problem.startswith(f"name: {message}")


@pytest.mark.parametrize("char", ["\x85", "\x9b", "\u202e", "\u2066", "\u200b", "\ufeff"])
def test_invisible_and_bidi_characters_are_refused(char: str) -> None:
    assert only_problem(base(description=f"safe{char}text")) == (
        f"description: must not contain control or invisible characters (U+{ord(char):04X})"
    )


@pytest.mark.parametrize("method", ["runtime", "Config"])
def test_method_names_that_collide_with_service_members(method: str) -> None:
    data = base(
        services=[
            {"name": "S", "description": "x", "methods": [{"name": method, "description": "x"}]}
        ]
    )
    assert only_problem(data) == (
        f"services.0.methods: method name {method!r} is reserved by Service"
    )


def test_validated_spec_cannot_be_changed() -> None:
    spec = validate_spec(full())
    assert isinstance(spec.actions, tuple)
    assert isinstance(spec.actions[0].parameters, tuple)
    assert isinstance(spec.services[0].methods, tuple)
    assert isinstance(spec.dependencies, tuple)
    with pytest.raises((TypeError, AttributeError)):
        spec.actions.append(spec.actions[0])  # type: ignore[attr-defined]
    with pytest.raises((TypeError, AttributeError)):
        spec.actions[0].similes.append("Other")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="frozen"):
        spec.name = "plugin-other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        spec.actions[0].name = "Other"  # type: ignore[misc]
