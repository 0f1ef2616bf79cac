"""What the scaffold says about each component: keywords, similes, examples, sample inputs.

The template pack needs, for a component to behave in a live agent: the words that make a
message about it (``validate`` checks them), similes the planner can match, at least two
examples in ElizaOS's format, and sample requests its tests send — one that states every
parameter the way a person writes it ("send tip: amount 5, recipient alice"), one that
states none. Everything here is a pure function of the spec, so the same spec always
renders the same plugin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.spec.schema import (
    MAX_EXAMPLES,
    Action,
    Evaluator,
    Parameter,
    Provider,
    Service,
    ServiceMethod,
    constant,
    words,
)

MIN_EXAMPLES = 2
MIN_KEYWORD_LENGTH = 3
# Name words that say nothing about what a message is about.
GENERIC_WORDS = frozenset(
    [
        "get",
        "set",
        "do",
        "run",
        "make",
        "show",
        "list",
        "check",
        "handle",
        "process",
        "the",
        "a",
        "an",
        "for",
        "of",
        "to",
        "in",
        "on",
        "with",
        "by",
        "from",
        "and",
        "or",
        "provider",
        "service",
        "evaluator",
        "action",
    ]
)
# Words a request names its single free-text parameter after ("weather for Paris"): kept
# out of the bare request so that it really states no parameter.
CUE_WORDS = frozenset(
    ["for", "in", "to", "at", "about", "on", "from", "with", "called", "named", "of"]
)
VERB_SYNONYMS: dict[str, tuple[str, ...]] = {
    "get": ("fetch", "check"),
    "fetch": ("get",),
    "send": ("give",),
    "create": ("make", "add"),
    "add": ("create",),
    "delete": ("remove",),
    "remove": ("delete",),
    "search": ("find", "look_up"),
    "find": ("search",),
    "post": ("publish",),
    "translate": ("convert",),
    "report": ("show",),
    "show": ("display",),
    "list": ("show",),
    "summarize": ("summarise",),
    "book": ("reserve",),
}
STRING_SAMPLES: dict[str, str] = {
    "city": "Paris",
    "location": "Paris",
    "place": "Paris",
    "country": "France",
    "language": "French",
    "recipient": "alice",
    "user": "alice",
    "username": "alice",
    "name": "alice",
    "to": "alice",
    "symbol": "BTC",
    "token": "ETH",
    "coin": "BTC",
    "currency": "EUR",
    "query": "cats",
    "topic": "cats",
    "text": "hello",
    "message": "hello",
    "title": "groceries",
    "task": "groceries",
    "item": "groceries",
}
SAMPLE_NUMBER = 5


def stem(word: str) -> str:
    """A prefix that the word's inflections start with: locations -> location."""
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def name_words(name: str) -> list[str]:
    """The words of a component name without its kind suffix: FooProvider -> foo."""
    parts = words(name)
    if len(parts) > 1 and parts[-1] in ("provider", "service", "evaluator", "action"):
        parts = parts[:-1]
    return parts


def keywords(component: Action | Provider | Evaluator | Service) -> list[str]:
    """Stems of the name's (and similes') content words, in order, without repeats."""
    found: list[str] = []
    sources = [name_words(component.name)]
    if isinstance(component, Action):
        sources += [words(s) for s in component.similes]
    for parts in sources:
        for word in parts:
            if word in GENERIC_WORDS or len(word) < MIN_KEYWORD_LENGTH or not word.isalpha():
                continue
            key = stem(word)
            if key not in found:
                found.append(key)
    if not found:
        found = [stem(w) for w in name_words(component.name) if len(w) >= MIN_KEYWORD_LENGTH]
    return found or [name_words(component.name)[0]]


def similes(component: Action | Evaluator) -> list[str]:
    """The spec's similes, then the object alone and verb synonyms (GET_X -> FETCH_X)."""
    own = constant(component.name)
    out: list[str] = []

    def add(value: str) -> None:
        if value and value != own and value not in out and len(out) < MAX_EXAMPLES:
            out.append(value)

    if isinstance(component, Action):
        for simile in component.similes:
            add(constant(simile))
    parts = name_words(component.name)
    if len(parts) > 1:
        add("_".join(parts[1:]).upper())
        for synonym in VERB_SYNONYMS.get(parts[0], ()):
            add("_".join([synonym, *parts[1:]]).upper())
    if not out:
        add(own + "_REQUEST")
    return out


def sample_value(param: Parameter) -> str | int | bool:
    if param.type == "number":
        return SAMPLE_NUMBER
    if param.type == "boolean":
        return True
    for word in reversed(words(param.name)):
        if word in STRING_SAMPLES:
            return STRING_SAMPLES[word]
    return "demo"


def _label(name: str) -> str:
    return " ".join(words(name))


@dataclass(frozen=True)
class ActionSamples:
    request: str  # states every parameter
    bare: str  # states none
    json: dict[str, str]  # parameter -> its sample value as JSON (how the action reports it)
    values: dict[str, str | int | bool]


def action_samples(action: Action) -> ActionSamples:
    phrase = " ".join(name_words(action.name))
    values = {p.name: sample_value(p) for p in action.parameters}
    stated = ", ".join(f"{_label(p.name)} {_text(values[p.name])}" for p in action.parameters)
    request = phrase[:1].upper() + phrase[1:] + (f": {stated}" if stated else ".")
    bare_words = [w for w in name_words(action.name) if w not in CUE_WORDS]
    bare = " ".join(bare_words or ["please"]) + "."
    return ActionSamples(
        request=request,
        bare=bare[:1].upper() + bare[1:],
        json={name: json.dumps(value) for name, value in values.items()},
        values=values,
    )


def _text(value: str | int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def action_examples(action: Action) -> list[dict[str, str]]:
    """The spec's examples, then generated ones, so there are always at least two."""
    phrase = " ".join(name_words(action.name))
    reply = f"Sure, I'll {phrase} now."
    out = [{"user": text, "agent": reply} for text in action.examples]
    samples = action_samples(action)
    generated = [samples.request, f"Can you {phrase} for me?"]
    if action.parameters:
        generated[1] = f"Please {phrase} with " + " and ".join(
            f"{_label(p.name)} {_text(samples.values[p.name])}" for p in action.parameters
        )
    for text in generated:
        if len(out) >= MIN_EXAMPLES:
            break
        if all(text != e["user"] for e in out):
            out.append({"user": text, "agent": reply})
    return out


def evaluator_sample(evaluator: Evaluator) -> str:
    return "I have a question about " + " and ".join(keywords(evaluator)) + " today."


def evaluator_examples(evaluator: Evaluator) -> list[dict[str, str]]:
    name = constant(evaluator.name)
    topic = " ".join(name_words(evaluator.name))
    return [
        {
            "prompt": f"A user message that {topic} applies to.",
            "user": evaluator_sample(evaluator),
            "outcome": f"{name} records what the message says about {topic}.",
        },
        {
            "prompt": "A message with nothing to evaluate.",
            "user": "Thanks, that is all.",
            "outcome": f"{name} does not run: the message is not about {topic}.",
        },
    ]


def sample_input(method: ServiceMethod) -> str:
    """A TS object literal with a sample value for every parameter, or nothing."""
    if not method.parameters:
        return ""
    return json.dumps({p.name: sample_value(p) for p in method.parameters})


def component_context(kind: str, component: Any) -> dict[str, Any]:
    """The extra template variables of one component."""
    if kind == "actions":
        samples = action_samples(component)
        return {
            "keywords": keywords(component),
            "similes": similes(component),
            "examples": action_examples(component),
            "sample_request": samples.request,
        }
    if kind == "evaluators":
        return {
            "keywords": keywords(component),
            "similes": similes(component),
            "examples": evaluator_examples(component),
            "sample_request": evaluator_sample(component),
        }
    return {}
