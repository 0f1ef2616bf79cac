"""Components a description names outright: "an action to …", "a provider for …".

When a description names its components ("an action SEND_TIP that sends a tip, a provider
for wallet balance, an evaluator that records tipping requests"), the spec has exactly
those: the same kinds, the same count, the names given, the parameters written in
parentheses or after "takes"/"for a …", each with its own description (its clause). The
prose reader in :mod:`bot.spec.keywords.parser` is used only when nothing is named.

A *mention* is a kind word (action, provider, service, evaluator, singular or plural)

* after a determiner ("an action", "a wallet balance provider", "one service"), or
* followed by a name (``SEND_TIP``, "called X", "named X", a quoted or backticked name),

unless it is someone else's thing ("uses the Twitter service", "from a weather service").
Its clause runs to the next mention or the end of the sentence. "actions SEND_TIP and
GET_BALANCE" (a plural followed by names) is one mention per name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["action", "provider", "service", "evaluator"]

KIND_WORDS: dict[str, Kind] = {
    "action": "action",
    "actions": "action",
    "provider": "provider",
    "providers": "provider",
    "service": "service",
    "services": "service",
    "evaluator": "evaluator",
    "evaluators": "evaluator",
}
DETERMINERS = frozenset(["a", "an", "one", "the", "another", "each", "its", "new", "single"])
# Before a determiner: the kind word names something the plugin talks to, not a component.
EXTERNAL = frozenset(
    [
        "from",
        "via",
        "using",
        "uses",
        "use",
        "through",
        "call",
        "calls",
        "calling",
        "query",
        "queries",
        "existing",
        "external",
        "third",
        "party",
        "like",
    ]
)
NAME_MARKERS = frozenset(["called", "named", "titled"])
VERB_MARKERS = frozenset(["that", "which", "who", "to"])
OBJECT_MARKERS = frozenset(
    ["for", "of", "about", "on", "with", "giving", "providing", "returning", "exposing"]
)
MODALS = frozenset(
    [
        "can",
        "will",
        "should",
        "would",
        "could",
        "may",
        "must",
        "also",
        "then",
        "automatically",
        "periodically",
        "always",
        "just",
        "only",
    ]
)
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "its",
        "it",
        "their",
        "them",
        "they",
        "his",
        "her",
        "our",
        "your",
        "my",
        "and",
        "or",
        "but",
        "nor",
        "so",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "into",
        "onto",
        "over",
        "per",
        "via",
        "as",
        "is",
        "are",
        "be",
        "been",
        "being",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "while",
        "if",
        "then",
        "than",
        "also",
        "plus",
        "any",
        "some",
        "all",
        "each",
        "every",
        "no",
        "not",
        "can",
        "will",
        "should",
        "would",
        "could",
        "may",
        "might",
        "must",
    ]
)
FALLBACK_PREPOSITIONS = frozenset(["on", "about", "to", "into", "with"])
PARAM_PREPOSITIONS = frozenset(["for", "in", "with", "into", "by", "per"])
BARE_PARAM_PREPOSITIONS = frozenset(["by", "per"])
PARAM_FILLERS = frozenset(
    [
        "a",
        "an",
        "the",
        "given",
        "specific",
        "specified",
        "particular",
        "certain",
        "chosen",
        "target",
        "provided",
        "requested",
        "desired",
        "selected",
    ]
)
TAKES = frozenset(["takes", "take", "taking", "accepts", "accept", "accepting", "needs", "given"])
NUMBER_WORDS = frozenset(
    [
        "amount",
        "amounts",
        "count",
        "number",
        "limit",
        "days",
        "day",
        "hours",
        "hour",
        "minutes",
        "minute",
        "seconds",
        "weeks",
        "months",
        "years",
        "quantity",
        "price",
        "age",
        "total",
        "size",
        "max",
        "min",
        "maximum",
        "minimum",
        "percent",
        "percentage",
        "rate",
        "threshold",
        "duration",
        "timeout",
    ]
)
TYPE_WORDS = frozenset(["string", "number", "boolean", "text", "integer", "int", "float", "bool"])
NOT_PARAMS = frozenset(
    [
        "background",
        "conversation",
        "conversations",
        "chat",
        "order",
        "case",
        "example",
        "time",
        "realtime",
        "response",
        "reply",
        "way",
        "moment",
        "future",
        "past",
        "detail",
        "details",
        "plugin",
        "plugins",
        "user",
        "users",
        "agent",
        "me",
        "us",
        "you",
        "them",
        "it",
    ]
)
MAX_PREFIX_WORDS = 3
MAX_OBJECT_WORDS = 3
MAX_PARAM_WORDS = 2

_TOKEN = re.compile(r"`[^`]*`|\"[^\"]*\"|[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")
_UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_URL", "_PASSWORD", "_ID", "_ENDPOINT", "_HOST")


@dataclass
class NamedParam:
    words: list[str]
    type: Literal["string", "number", "boolean"]


@dataclass
class Mention:
    kind: Kind
    name: str | None  # as written, when the description gives one
    prefix: list[str]  # words between the determiner and the kind word
    verb: str  # the clause's verb, base form, or ""
    object: list[str]
    params: list[NamedParam] = field(default_factory=list)
    clause: str = ""  # the words describing it, as written


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c) and c.isascii())


def tokens(sentence: str) -> list[str]:
    return [m.group(0) for m in _TOKEN.finditer(fold(sentence))]


def is_word(tok: str) -> bool:
    return bool(tok) and (tok[0].isalnum() or tok[0] == "_")


def is_caps_name(tok: str) -> bool:
    """One upper-case word right after "action": ``an action CALCULATE``."""
    return len(tok) >= 3 and tok.isalpha() and tok.isupper()


def is_name(tok: str) -> bool:
    """An explicit name: UPPER_SNAKE, or quoted/backticked words."""
    if tok[:1] in '`"' and len(tok) > 2:
        return bool(re.fullmatch(r"[`\"][A-Za-z][A-Za-z0-9_ -]{0,60}[`\"]", tok))
    return bool(_UPPER_SNAKE.fullmatch(tok)) and not tok.endswith(ENV_SUFFIXES)


def unquote(tok: str) -> str:
    return tok.strip('`"')


def base_verb(word: str) -> str:
    """Third person or -ing form to the base: caches -> cache, watches -> watch."""
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "tches", "xes", "zes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    if w.endswith("ing") and len(w) > 5:
        stem = w[:-3]
        return stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem
    return w


def _mention_starts(toks: list[str]) -> list[tuple[int, int, Kind]]:
    """(start, kind index, kind) of every mention, start being its determiner or name."""
    found: list[tuple[int, int, Kind]] = []
    for i, tok in enumerate(toks):
        kind = KIND_WORDS.get(tok.lower())
        if kind is None:
            continue
        start = _determiner_before(toks, i)
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        named_after = is_name(nxt) or nxt.lower() in NAME_MARKERS or nxt == ":"
        named_after |= kind == "action" and is_caps_name(nxt)
        named_before = i > 0 and is_name(toks[i - 1])
        if start is None and not named_after and not named_before:
            continue
        if start is None:
            start = i - 1 if named_before else i
        before = toks[start - 1].lower() if start > 0 else ""
        if before in EXTERNAL:
            continue
        found.append((start, i, kind))
    return found


def _determiner_before(toks: list[str], i: int) -> int | None:
    j = i - 1
    words = 0
    while j >= 0 and words <= MAX_PREFIX_WORDS:
        tok = toks[j]
        if tok.lower() in DETERMINERS:
            return j
        if not is_word(tok) and not is_name(tok):
            return None
        if tok.lower() in STOP or KIND_WORDS.get(tok.lower()):
            return None
        words += 1
        j -= 1
    return None


def _content(toks: Sequence[str], start: int, limit: int) -> tuple[list[str], int]:
    """Up to ``limit`` content words from ``start``, skipping determiners first."""
    k = start
    while k < len(toks) and toks[k].lower() in PARAM_FILLERS:
        k += 1
    out: list[str] = []
    while k < len(toks) and len(out) < limit:
        tok = toks[k]
        low = tok.lower()
        if tok == "'" and k + 1 < len(toks) and toks[k + 1].lower() == "s":
            k += 2  # a possessive: "the repository's open issues"
            continue
        if not is_word(tok) or low in STOP or low in KIND_WORDS or low in TAKES:
            break
        if not tok.isdigit():
            out.append(low)
        k += 1
    return out, k


def _param_type(
    words: Sequence[str], written: str | None = None
) -> Literal["string", "number", "boolean"]:
    if written in ("number", "integer", "int", "float"):
        return "number"
    if written in ("boolean", "bool"):
        return "boolean"
    if written in ("string", "text"):
        return "string"
    return "number" if any(w in NUMBER_WORDS for w in words) else "string"


def _parenthesised(toks: Sequence[str], start: int) -> tuple[list[NamedParam], int] | None:
    """``(amount: number, recipient)`` -> two parameters; None if not a parameter list."""
    if start >= len(toks) or toks[start] != "(":
        return None
    params: list[NamedParam] = []
    k = start + 1
    current: list[str] = []
    written: str | None = None
    while k < len(toks) and toks[k] != ")":
        tok = toks[k]
        low = tok.lower()
        if tok in (",", ";") or low in ("and", "or"):
            if current:
                params.append(NamedParam(current, _param_type(current, written)))
            current, written = [], None
        elif tok == ":":
            k += 1
            if k < len(toks) and toks[k].lower() in TYPE_WORDS:
                written = toks[k].lower()
        elif low in TYPE_WORDS and current:
            written = low
        elif low in TAKES and not current:
            pass  # "(takes an amount and a recipient)": the verb names no parameter
        elif is_word(tok) and low not in PARAM_FILLERS and len(current) < MAX_PARAM_WORDS:
            current.append(low)
        k += 1
    if current:
        params.append(NamedParam(current, _param_type(current, written)))
    if k >= len(toks) or not params:
        return None
    return params, k + 1


def _parameters(toks: Sequence[str], start: int) -> list[NamedParam]:
    """Parameters in the rest of a clause: parentheses, "takes a …", "for a …", "by …"."""
    params: list[NamedParam] = []
    k = start
    while k < len(toks):
        tok = toks[k].lower()
        listed = _parenthesised(toks, k)
        if listed is not None:
            params += listed[0]
            k = listed[1]
            continue
        if tok in TAKES or tok in PARAM_PREPOSITIONS:
            m = k + 1
            qualified = False
            while m < len(toks) and toks[m].lower() in PARAM_FILLERS:
                qualified = True
                m += 1
            if tok in TAKES or qualified or tok in BARE_PARAM_PREPOSITIONS:
                while True:
                    words, m = _content(toks, m, MAX_PARAM_WORDS)
                    if not words or words[0] in NOT_PARAMS or not words[0][0].isalpha():
                        break
                    if (
                        words[-1] in ("number", "amount", "count")
                        and m < len(toks)
                        and toks[m].lower() == "of"
                    ):
                        inner, m = _content(toks, m + 1, MAX_PARAM_WORDS)
                        words = inner or words
                        params.append(NamedParam(words, "number"))
                    else:
                        params.append(NamedParam(words, _param_type(words)))
                    if m < len(toks) and toks[m].lower() in ("and", "or", ","):
                        m += 1
                        while m < len(toks) and toks[m].lower() in PARAM_FILLERS:
                            m += 1
                        continue
                    break
                k = max(m, k + 1)
                continue
        k += 1
    return params


def _read_mention(toks: list[str], start: int, kind_at: int, end: int, kind: Kind) -> Mention:
    prefix: list[str] = []
    name: str | None = None
    for tok in toks[start + 1 : kind_at]:
        if is_name(tok):
            name = unquote(tok)
        elif is_word(tok) and tok.lower() not in STOP:
            prefix.append(tok.lower())
    k = kind_at + 1
    if k < end and toks[k] == ":":
        k += 1
    if k < end and toks[k].lower() in NAME_MARKERS:
        k += 1
    if k < end and kind == "action" and is_caps_name(toks[k]):
        name = toks[k]
        k += 1
    elif k < end and (
        is_name(toks[k])
        or (
            toks[kind_at - 1 : kind_at] and toks[k - 1].lower() in NAME_MARKERS and is_word(toks[k])
        )
    ):
        name = unquote(toks[k])
        k += 1
    clause_start = k
    verb = ""
    obj: list[str] = []
    marker = toks[k].lower() if k < end else ""
    if marker == "(":
        listed = _parenthesised(toks, k)
        if listed is not None:
            k = listed[1]
            marker = toks[k].lower() if k < end else ""
    if marker in VERB_MARKERS:
        k += 1
        while k < end and toks[k].lower() in MODALS:
            k += 1
        if k < end and is_word(toks[k]) and toks[k].lower() not in STOP:
            verb = base_verb(toks[k])
            obj, k = _content(toks[:end], k + 1, MAX_OBJECT_WORDS)
            if not obj and k < end and toks[k].lower() in FALLBACK_PREPOSITIONS:
                obj, k = _content(toks[:end], k + 1, MAX_OBJECT_WORDS)  # "comment on a PR"
    elif marker in OBJECT_MARKERS:
        obj, k = _content(toks[:end], k + 1, MAX_OBJECT_WORDS)
    mention = Mention(kind, name, prefix, verb, obj, clause=_clause_text(toks[clause_start:end]))
    mention.params = _parameters(toks[:end], clause_start) if kind in ("action", "service") else []
    return mention


def _clause_text(toks: Sequence[str]) -> str:
    words = list(toks)
    while words and words[-1].lower() in ("and", "or", "plus", ",", "also", "with"):
        words.pop()
    if words and words[0].lower() in ("that", "which", "who", "to", ":", *OBJECT_MARKERS):
        words = words[1:]
    text = ""
    for tok in words:
        possessive = tok.lower() == "s" and text.endswith("'")  # "the repository's"
        if (
            (not is_word(tok) and tok not in '("`')
            or (text.endswith(("(",)) and is_word(tok))
            or possessive
        ):
            text += tok
        else:
            text += (" " if text else "") + tok
    text = text.strip(" ,")
    return text[:1].upper() + text[1:]


def _plural_names(toks: list[str], kind_at: int, kind: Kind) -> list[tuple[int, int, Kind]] | None:
    """ "actions SEND_TIP and GET_BALANCE": one mention per name after a plural kind word."""
    if not toks[kind_at].lower().endswith("s"):
        return None
    k = kind_at + 1
    if k < len(toks) and toks[k] == ":":
        k += 1
    names: list[tuple[int, int, Kind]] = []
    while k < len(toks) and is_name(toks[k]):
        names.append((k, k, kind))
        k += 1
        listed = _parenthesised(toks, k)
        if listed is not None:
            k = listed[1]
        if k < len(toks) and toks[k].lower() in (",", "and"):
            k += 1
    return names if len(names) > 1 else None


def mentions(sentence: str) -> list[Mention]:
    """Every component the sentence names, in order."""
    toks = tokens(sentence)
    # (where the previous clause ends, start, kind word, kind)
    expanded: list[tuple[int, int, int, Kind]] = []
    for start, kind_at, kind in _mention_starts(toks):
        plural = _plural_names(toks, kind_at, kind)
        if plural:
            expanded.append((start, *plural[0]))
            expanded += [(at, at, at, k) for at, _, k in plural[1:]]
        else:
            expanded.append((start, start, kind_at, kind))
    found: list[Mention] = []
    for index, (_, start, kind_at, kind) in enumerate(expanded):
        end = expanded[index + 1][0] if index + 1 < len(expanded) else len(toks)
        if start == kind_at and is_name(toks[start]):  # a name of a plural list
            listed = _parenthesised(toks, start + 1) if kind == "action" else None
            params = listed[0] if listed else []
            found.append(Mention(kind, unquote(toks[start]), [], "", [], params))
            continue
        found.append(_read_mention(toks, start, kind_at, end, kind))
    return found


def env_names(text: str) -> list[str]:
    """UPPER_SNAKE environment variable names written in the description."""
    out: list[str] = []
    for tok in tokens(text):
        if _UPPER_SNAKE.fullmatch(tok) and tok.endswith(ENV_SUFFIXES) and tok not in out:
            out.append(tok)
    return out
