"""The keyword parser: a PluginSpec from the words of a description, no model.

The spec is derived from the words of the description, by
  whole words only: the text is lower-cased (after NFKD, so accents and full-width
  letters fold to ASCII) and cut into ``[a-z0-9]+`` tokens. A keyword matches a token,
  or a token whose simple inflection (an explicit table, then -s/-es/-ies/-ed/-ing
  stripping) is that keyword; the stripped form must be at least three letters, so
  "dos" never becomes "do". "todo", "undo", "update", "metadata" and "rundown" are
  tokens of their own and match nothing they merely contain.

Rules of the prose reader, in the order they are applied:

1. Sentences end at ``. ! ?`` followed by space, ``;``, a blank line or a line that
   starts a list item; commas, brackets and other punctuation end a phrase.
2. The topic is the run of content words just before the first "plugin" ("a todo list
   plugin" -> ``todo-list``), else the words after "plugin called/named/for/about",
   else the verb and object of the first component, else the first content words, else
   ``custom``. The plugin is named ``plugin-<topic>``.
3. A verb keyword starts a component of its kind, unless it stands where a noun does:
   after a determiner, "of", a possessive or an adjective ("a report", "the search"),
   after another preposition unless it is an -ing form ("for transfers", but "for
   sending emails"), after a plain noun ("weather reports", but "users add", "the
   plugin sends"), or as a participle after "be". Kinds: actions (send,
   report, fetch, look up, do, run, ...), services (monitor, watch, poll, schedule,
   stream, ...), evaluators (evaluate, assess, judge, classify, detect, extract, ...)
   and providers (provide, supply, inject, ...). Action verbs inside the topic are
   nouns ("a search plugin").
4. The component's object is up to three content words after the verb, skipping
   determiners and a leading addressee ("sends users a summary"), and stopping at a
   preposition, conjunction, pronoun, punctuation or a following determiner. An empty
   object takes the words of a following "about/of/on/to/for/with/into" phrase. A verb
   whose object mentions "plugin" is the request itself ("create a plugin") and is
   skipped.
5. Names: actions are the PascalCase of verb + object ("reports the current temperature
   for a city" -> ``ReportCurrentTemperature``); providers, services and evaluators get
   a ``Provider``/``Service``/``Evaluator`` suffix. An empty object uses the topic.
   A service name whose type @elizaos/core already uses gets a ``Plugin`` prefix
   (``PluginMessageService``), a method name a Service or Object already has a ``run``
   prefix (``runTime`` -> ``runRunTime``).
6. Parameters (actions and service methods): after the object, "for/in/with/into +
   determiner or 'given'-like word + noun" and "by/per + noun" give a parameter named
   after the noun in camelCase ("for a city" -> ``city``, "by city", "in a given
   language"); "a number of days" -> ``days``; number words (amount, count, number,
   limit, days, ...) give type ``number``, anything else ``string``. "and/or + noun"
   continues the list.
7. Sentence modifiers: an evaluator noun (sentiment, toxicity, ...) or "after a
   conversation" turns the first analysing verb (analyze, check, summarize, ...) of its
   sentence into an evaluator; a background adverb (periodically, in the background,
   every hour, daily, ...) outside any object turns the first action of its sentence
   into a service whose method is the action. Leftover nouns (a "service", "context",
   "data", "status", "knowledge", ...) that no component of their kind in the sentence
   used make a component named after their neighbouring words.
8. Environment: "api key"/"apikey", "access/secret/private key", "token" (as a head
   noun), "secret", "password", "credentials" -> required, sensitive variables named
   ``<VENDOR or TOPIC>_API_KEY``, ``_TOKEN``, ``_SECRET``, ``_PASSWORD``,
   ``_CREDENTIALS``; "username" -> required, not sensitive; "api/base/server url" and
   "endpoint" -> ``<TOPIC>_API_URL``, optional, not sensitive; "webhook url" ->
   ``_WEBHOOK_URL``, required and sensitive.
9. If nothing was recognised the plugin gets one action ``Get<Topic>`` and one provider
   ``<Topic>Provider``. Duplicates (by lower case and kebab form) are dropped and every
   list is cut to the schema's bounds.

Everything is a pure function of the text: no randomness, no set or hash ordering.
Work is bounded: the text is cut to ``MAX_INPUT_CHARS`` before anything, the prose to
``MAX_DESCRIPTION_LENGTH``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.spec.blocks import collapse
from bot.spec.keywords import explicit
from bot.spec.schema import (
    CORE_SERVICE_TYPES,
    MAX_ACTIONS,
    MAX_COMPONENT_NAME_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_ENVIRONMENT,
    MAX_EVALUATORS,
    MAX_METHODS,
    MAX_PARAMETERS,
    MAX_PROVIDERS,
    MAX_SERVICES,
    MAX_SUMMARY_LENGTH,
    RESERVED_METHOD_NAMES,
    PluginSpec,
    SpecError,
    kebab,
    validate_spec,
    words,
)

__all__ = ["VERB_KIND", "VOCAB", "spec_from_prose", "stem"]

Kind = Literal["action", "provider", "service", "evaluator"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------- words

ACTION_VERBS = _words("""
    add alert analyse analyze answer book build buy calculate call cancel check close
    compare compute convert create define delete deploy describe display do download
    draft draw edit estimate execute explain fetch find flip forecast generate get greet
    invite list log lookup make manage mint notify open order pay ping plan play post predict
    publish query quote read recommend record remind remove reply report reserve
    respond retrieve roll run save scrape search sell send set share shorten show stake
    store suggest summarize summarise swap tell trade transcribe transfer translate
    tweet update upload verify vote warn email write
    """)
PROVIDER_VERBS = _words("provide supply inject expose inform")
SERVICE_VERBS = _words(
    "monitor watch poll schedule connect stream sync synchronize listen subscribe track crawl"
)
EVALUATOR_VERBS = _words(
    "evaluate assess judge score classify detect extract reflect rate grade moderate "
    "categorize categorise flag learn remember"
)
VERB_KIND: dict[str, Kind] = {
    **{w: "action" for w in sorted(ACTION_VERBS)},
    **{w: "provider" for w in sorted(PROVIDER_VERBS)},
    **{w: "service" for w in sorted(SERVICE_VERBS)},
    **{w: "evaluator" for w in sorted(EVALUATOR_VERBS)},
}

PROVIDER_NOUNS = _words("context data information info knowledge status facts")
EVALUATOR_NOUNS = _words("sentiment toxicity evaluation assessment reflection")
# Nouns that name a long-running thing; they make a service but convert no verb.
SERVICE_NOUNS = _words("service daemon worker websocket scheduler watcher listener poller")
# Adverbs of time that make the first action of their sentence a service.
SERVICE_ADVERBS = _words(
    "background periodically periodic regularly continuously constantly hourly daily "
    "weekly nightly monthly longrunning realtime interval intervals cron"
)
TIME_UNITS = _words(
    "second seconds minute minutes hour hours day days week weeks month months morning "
    "evening night monday tuesday wednesday thursday friday saturday sunday"
)
CONVERSATION_WORDS = _words(
    "conversation conversations message messages interaction interactions chat chats "
    "exchange discussion discussions reply replies response responses"
)
# Verbs that become evaluators next to an evaluator noun or "after a conversation".
EVALUATIVE_VERBS = _words(
    "analyze analyse check summarize summarise review read log record remember track monitor watch"
)
# Verbs too vague to name a service converted from them.
GENERIC_VERBS = _words("run do execute")

DETERMINERS = _words(
    "a an the this these those each every any some all my your our their its his her "
    "no another several many few most one s"
)
FILLER_ADJECTIVES = _words(
    "given specific specified particular certain chosen target provided requested "
    "desired selected single next last current"
)
PREPOSITIONS = _words("""
    about above across after against along among around as at before behind below
    beneath beside between beyond by during except for from in inside into like near of
    off on onto out outside over per since through throughout till to toward towards
    under until upon via with within without
    """)
CONJUNCTIONS = _words("""
    and or but nor so yet then than that which who whom whose when whenever where
    wherever while if unless because though although whether how what why once also
    """)
PRONOUNS = _words("""
    i me mine we us you he him she it they them itself themselves myself yourself
    ourselves someone something anything everything everyone anyone nothing
    """)
AUXILIARIES = _words("""
    is are was were be been being am has have had having can could will would shall
    should may might must let lets letting allow allows allowed allowing help helps
    helping enable enables enabling want wants need needs needed require requires
    required use uses using used like likes just only very too please able keep keeps
    kept keeping try tries t d ll re ve m not first finally always often never now later
    soon sometimes still even ever again already automatically
    """)
STOPWORDS = DETERMINERS | PREPOSITIONS | CONJUNCTIONS | PRONOUNS | AUXILIARIES
# Who an action is done for, skipped at the start of an object ("send users a summary").
ADDRESSEES = _words(
    "user users agent agents bot bots eliza elizaos llm model ai assistant people person "
    "member members me us you them it him her"
)
# Who may come right before a verb as its subject.
SUBJECTS = ADDRESSEES | _words("plugin plugins service it that which who")
# Words that say nothing about what a plugin is about.
TOPIC_FILLERS = _words(
    "plugin plugins elizaos eliza os simple basic small tiny new custom cool nice little "
    "awesome useful great agent bot ai integration integrations capabilities capability free"
)
BE_FORMS = _words("is are was were be been being")
# Words before a noun that make it someone else's ("from a weather service").
EXTERNAL_MARKERS = _words(
    "from via using uses use through with by call calls calling query queries"
)
# Verbs that ask for the plugin itself ("create a weather plugin").
META_VERBS = _words("create make build write generate develop implement design code scaffold")
PARAM_PREPOSITIONS = _words("for in with into by per")
# Prepositions whose noun is a parameter even without a determiner ("by city").
BARE_PARAM_PREPOSITIONS = _words("by per")
OBJECT_FALLBACK_PREPOSITIONS = _words("about of on to for with into")
PARAM_BLACKLIST = (
    _words("""
        background conversation conversations chat chats order case example addition
        general time realtime morning evening night afternoon response reply return way
        moment future past detail details plugin plugins fact
        """)
    | ADDRESSEES
)
NUMBER_WORDS = _words("""
    amount amounts count counts number numbers limit limits days day hours hour minutes
    minute seconds second weeks week months month years year quantity price age total
    size max min maximum minimum percent percentage rate threshold duration timeout
    """)
COUNT_NOUNS = _words("number amount count")

IRREGULAR: dict[str, str] = {
    "sent": "send",
    "did": "do",
    "does": "do",
    "done": "do",
    "doing": "do",
    "ran": "run",
    "got": "get",
    "gotten": "get",
    "made": "make",
    "wrote": "write",
    "written": "write",
    "found": "find",
    "told": "tell",
    "bought": "buy",
    "sold": "sell",
    "built": "build",
    "paid": "pay",
    "shown": "show",
    "drew": "draw",
    "drawn": "draw",
    "analyses": "analyse",
    "learnt": "learn",
}

# Environment words: token -> (name suffix, sensitive, required).
ENV_HEADS: dict[str, tuple[str, bool, bool]] = {
    "password": ("PASSWORD", True, True),
    "passwords": ("PASSWORD", True, True),
    "passphrase": ("PASSPHRASE", True, True),
    "credential": ("CREDENTIALS", True, True),
    "credentials": ("CREDENTIALS", True, True),
    "username": ("USERNAME", False, True),
}
KEY_QUALIFIERS = _words("api access secret private license app")
TOKEN_QUALIFIERS = _words("api access auth bot bearer oauth refresh app session")
SECRET_QUALIFIERS = _words("client webhook app api signing shared")
URL_QUALIFIERS = _words("api base server service host custom instance rpc backend configurable")
# Words before "token" that mean a coin rather than a credential.
COIN_WORDS = _words("crypto erc20 erc721 spl governance native nft meme new")
ENV_WORDS = _words(
    "api apikey key keys token tokens secret secrets url urls endpoint endpoints"
) | frozenset(ENV_HEADS)

VOCAB = (
    frozenset(VERB_KIND)
    | PROVIDER_NOUNS
    | EVALUATOR_NOUNS
    | SERVICE_NOUNS
    | SERVICE_ADVERBS
    | _words("keep look long real")
)

MAX_OBJECT_WORDS = 3
MAX_PARAM_WORDS = 2
MAX_TOPIC_WORDS = 3
MAX_WORD_LENGTH = 24
BREAK = ","  # a token that ends a phrase

_TOKEN = re.compile(r"[a-z0-9]+|[,;:()\[\]{}\"!?.<>|]")
# Sentences end at . ! ? before a space, at ";", at a blank line and before a list item;
# a single line break is only a wrapped line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|;|\n[ \t]*\n|\n(?=[ \t]*(?:[-*+]|\d+[.)])\s)")


def stem(word: str) -> str:
    """The keyword a whole token inflects, or the token itself.

    Only forms that land on a known keyword are changed, and a stripped form must keep
    three letters: "reports" -> "report", "scheduling" -> "schedule", "dos" -> "dos".
    """
    if word in VOCAB:
        return word
    if word in IRREGULAR:
        return IRREGULAR[word]
    candidates: list[str] = []
    if word.endswith("ies"):
        candidates.append(word[:-3] + "y")
    if word.endswith("es"):
        candidates.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        candidates.append(word[:-1])
    if word.endswith("ied"):
        candidates.append(word[:-3] + "y")
    if word.endswith("ed"):
        candidates += [word[:-2], word[:-1]]
        if len(word) > 4 and word[-3] == word[-4]:
            candidates.append(word[:-3])
    if word.endswith("ing"):
        candidates += [word[:-3], word[:-3] + "e"]
        if len(word) > 5 and word[-4] == word[-5]:
            candidates.append(word[:-4])
    for candidate in candidates:
        if len(candidate) >= 3 and candidate in VOCAB:
            return candidate
    return word


# --------------------------------------------------------------------------- text


def _shorten(text: str, limit: int) -> str:
    text = collapse(text)
    if len(text) <= limit:
        return text
    return text[: limit - 3].rstrip() + "..."


def _ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


# --------------------------------------------------------------------------- prose


@dataclass
class _Tok:
    word: str  # the token as written (lower case ASCII), or BREAK
    stem: str
    sentence: int

    @property
    def is_break(self) -> bool:
        return self.word == BREAK


def _tokenise(sentences: Sequence[str]) -> list[_Tok]:
    toks: list[_Tok] = []
    for index, sentence in enumerate(sentences):
        raw = [m.group(0) for m in _TOKEN.finditer(_ascii_fold(sentence))]
        words = [w if w[0].isalnum() else BREAK for w in raw]
        merged = _merge_phrases(words)
        toks += [_Tok(w, BREAK if w == BREAK else stem(w), index) for w in merged]
        toks.append(_Tok(BREAK, BREAK, index))
    return toks


TODO_FOLLOWERS = _words("list lists item items app apps plugin plugins manager tracker")


def _merge_phrases(words: list[str]) -> list[str]:
    """Join the few two-word keywords into one token."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        after = words[i + 2] if i + 2 < len(words) else ""
        pair = (stem(word), nxt)
        if pair[0] == "look" and nxt == "up":
            out.append("lookup")
            i += 2
        elif word == "to" and nxt == "do" and after in TODO_FOLLOWERS:
            out.append("todo")
            i += 2
        elif word == "long" and stem(nxt) == "run":
            out.append("longrunning")
            i += 2
        elif word == "real" and nxt == "time":
            out.append("realtime")
            i += 2
        elif word == "e" and nxt == "mail":
            out.append("email")
            i += 2
        elif pair[0] == "keep" and nxt == "track":
            out.append("track")
            i += 2
        else:
            out.append(word)
            i += 1
    return out


def _is_content(tok: _Tok) -> bool:
    return (
        not tok.is_break
        and tok.word not in STOPWORDS
        and tok.stem not in STOPWORDS
        and len(tok.word) <= MAX_WORD_LENGTH
    )


@dataclass
class _Param:
    words: list[str]
    number: bool


@dataclass
class _Candidate:
    kind: Kind
    verb: str  # stem, or "" for a noun-made component
    words: list[str]  # object words, as written
    params: list[_Param]
    sentence: int
    generic: bool = False  # made from a noun or a vague verb: name it after the topic


@dataclass
class _Reader:
    toks: list[_Tok]
    consumed: list[bool] = field(init=False)
    topic_span: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.consumed = [False] * len(self.toks)

    def at(self, i: int) -> _Tok:
        if 0 <= i < len(self.toks):
            return self.toks[i]
        return _Tok(BREAK, BREAK, -1)

    # -- topic

    def topic_before_plugin(self) -> list[str]:
        for i, tok in enumerate(self.toks):
            if tok.word not in ("plugin", "plugins"):
                continue
            words: list[int] = []
            j = i - 1
            while j >= 0 and len(words) < MAX_TOPIC_WORDS:
                t = self.toks[j]
                if t.is_break or t.sentence != tok.sentence or t.stem in META_VERBS:
                    break
                if t.word in TOPIC_FILLERS:
                    self.topic_span.add(j)
                elif _is_content(t):
                    words.append(j)
                    self.topic_span.add(j)
                else:
                    break
                j -= 1
            if words:
                return [self.toks[k].word for k in reversed(words)]
            return []
        return []

    def topic_after_plugin(self) -> list[str]:
        for i, tok in enumerate(self.toks):
            if tok.word not in ("plugin", "plugins"):
                continue
            if self.at(i + 1).word not in ("called", "named", "for", "about"):
                return []
            j = i + 2
            while self.at(j).word in DETERMINERS or self.at(j).word in FILLER_ADJECTIVES:
                j += 1
            words: list[str] = []
            while _is_content(self.at(j)) and len(words) < MAX_TOPIC_WORDS:
                if self.at(j).word not in TOPIC_FILLERS:
                    words.append(self.at(j).word)
                j += 1
            return words
        return []

    def first_content_words(self) -> list[str]:
        words: list[str] = []
        for tok in self.toks:
            if (
                _is_content(tok)
                and tok.word not in TOPIC_FILLERS
                and (tok.stem not in VERB_KIND or tok.word.endswith("ing"))
                and tok.word not in ENV_WORDS
                and tok.word not in SUBJECT_SKIP
                and tok.stem not in SERVICE_ADVERBS
                and tok.stem not in SERVICE_NOUNS
                and tok.word[0].isalpha()
            ):
                words.append(tok.word)
                if len(words) == 2:
                    break
        return words

    # -- phrases

    def object_phrase(self, start: int) -> tuple[list[str], int, bool]:
        """Object words after a verb, the index after them, and whether it is the plugin."""
        k = start
        after_det = False
        # A leading addressee is skipped when a phrase follows it ("send users a summary").
        while self.at(k).word in DETERMINERS:
            k += 1
            after_det = True
        if self.at(k).word in ADDRESSEES:
            follower = self.at(k + 1)
            if follower.is_break or follower.word in STOPWORDS:
                k += 1
                after_det = False
                while self.at(k).word in DETERMINERS:
                    k += 1
                    after_det = True
        words: list[str] = []
        while len(words) < MAX_OBJECT_WORDS:
            t = self.at(k)
            if t.word in ("plugin", "plugins"):
                return words, k, True
            if t.is_break or t.word in PREPOSITIONS or t.word in CONJUNCTIONS:
                break
            if t.word in PRONOUNS or t.word in AUXILIARIES:
                break
            if t.word in DETERMINERS:
                if words:
                    break
                k += 1
                after_det = True
                continue
            if t.word.isdigit():
                k += 1
                continue
            if t.stem in SERVICE_ADVERBS and not (after_det and not words):
                break
            if len(t.word) > MAX_WORD_LENGTH:
                break
            words.append(t.word)
            k += 1
        if words:
            return words, k, False
        # "notifies users about new releases", "responds to greetings"
        if self.at(k).word in OBJECT_FALLBACK_PREPOSITIONS:
            inner, end, meta = self.object_phrase_plain(k + 1)
            if inner:
                return inner, end, meta
        return [], k, False

    def object_phrase_plain(self, start: int) -> tuple[list[str], int, bool]:
        k = start
        while self.at(k).word in DETERMINERS or self.at(k).word in ADDRESSEES:
            k += 1
        words: list[str] = []
        while len(words) < MAX_OBJECT_WORDS:
            t = self.at(k)
            if t.word in ("plugin", "plugins"):
                return words, k, True
            if not _is_content(t) or t.stem in SERVICE_ADVERBS:
                break
            if not t.word.isdigit():
                words.append(t.word)
            k += 1
        return words, k, False

    def parameters(self, start: int) -> tuple[list[_Param], int]:
        """Parameter phrases after an object, and the end of the phrases read."""
        params: list[_Param] = []
        k = start
        end = start
        steps = 0
        while steps < 8:
            steps += 1
            prep = self.at(k)
            if prep.word not in PREPOSITIONS:
                break
            m = k + 1
            qualified = False
            while self.at(m).word in DETERMINERS or self.at(m).word in FILLER_ADJECTIVES:
                qualified = True
                m += 1
            while self.at(m).word.isdigit():
                m += 1
            if prep.word not in PARAM_PREPOSITIONS or not (
                qualified or prep.word in BARE_PARAM_PREPOSITIONS
            ):
                # Not a parameter ("from coingecko"): step over it and look further.
                words, m = self.noun_words(m)
                if not words:
                    break
                k = end = m
                continue
            param, m = self.one_parameter(m)
            if param is None:
                break
            params.append(param)
            k = end = m
            # "for a city and country"
            while self.at(k).word in ("and", "or"):
                n = k + 1
                while self.at(n).word in DETERMINERS or self.at(n).word in FILLER_ADJECTIVES:
                    n += 1
                if self.at(n).stem in VERB_KIND:
                    break
                more, n = self.one_parameter(n)
                if more is None:
                    break
                params.append(more)
                k = end = n
        return params, end

    def noun_words(self, start: int) -> tuple[list[str], int]:
        k = start
        words: list[str] = []
        while len(words) < MAX_PARAM_WORDS and _is_content(self.at(k)):
            if self.at(k).stem in VERB_KIND and words:
                break
            words.append(self.at(k).word)
            k += 1
        return words, k

    def one_parameter(self, start: int) -> tuple[_Param | None, int]:
        words, k = self.noun_words(start)
        if not words or words[0] in PARAM_BLACKLIST or not words[0][0].isalpha():
            return None, start
        number = any(w in NUMBER_WORDS for w in words)
        if words[-1] in COUNT_NOUNS and self.at(k).word == "of":
            # "a number of days" -> days
            n = k + 1
            while self.at(n).word in DETERMINERS:
                n += 1
            inner, n2 = self.noun_words(n)
            if inner and inner[0][0].isalpha() and inner[0] not in PARAM_BLACKLIST:
                return _Param(inner, True), n2
        return _Param(words, number), k

    # -- components

    def is_noun_position(self, i: int) -> bool:
        """Whether a verb-looking word is used as a noun or adjective here.

        After a determiner, "of" or an adjective ("a report", "the search"); after another
        preposition unless it is an -ing form ("for transfers", but "for sending emails");
        after a plain noun ("weather reports"; but "users add", "the plugin sends");
        as a participle after "be" ("what was learned").
        """
        tok, prev = self.at(i), self.at(i - 1)
        if prev.word in DETERMINERS or prev.word == "of" or prev.word in FILLER_ADJECTIVES:
            return True
        if prev.word in PREPOSITIONS and prev.word != "to":
            return not tok.word.endswith("ing")
        if (
            _is_content(prev)
            and prev.word not in SUBJECTS
            and prev.stem not in VOCAB
            and not prev.word.endswith("ly")
        ):
            # a compound noun: "weather reports", "undo edits"
            return True
        return prev.word in BE_FORMS and tok.word != tok.stem and not tok.word.endswith("ing")

    def is_external(self, i: int) -> bool:
        """Whether a noun names someone else's thing ("uses a weather service")."""
        for k in range(i - 1, i - 4, -1):
            tok = self.at(k)
            if tok.is_break:
                return False
            if tok.word in EXTERNAL_MARKERS:
                return True
        return False

    def read(self) -> list[_Candidate]:
        candidates: list[_Candidate] = []
        sentences = sorted({t.sentence for t in self.toks})
        for sentence in sentences:
            candidates += self.read_sentence(sentence)
        return candidates

    def read_sentence(self, sentence: int) -> list[_Candidate]:
        indices = [i for i, t in enumerate(self.toks) if t.sentence == sentence]
        found: list[_Candidate] = []
        for i in indices:
            tok = self.toks[i]
            if self.consumed[i] or tok.is_break:
                continue
            kind = VERB_KIND.get(tok.stem)
            if kind is None or self.is_noun_position(i):
                continue
            if kind == "action" and i in self.topic_span:
                continue
            words, end, meta = self.object_phrase(i + 1)
            if meta:
                continue
            params: list[_Param] = []
            if kind in ("action", "service"):
                params, end = self.parameters(end)
            for j in range(i, max(end, i + 1)):
                self.consumed[j] = True
            found.append(_Candidate(kind, tok.stem, words, params, sentence))
        self.apply_modifiers(sentence, indices, found)
        return found

    def apply_modifiers(self, sentence: int, indices: list[int], found: list[_Candidate]) -> None:
        kinds = {c.kind for c in found}
        evaluative = [i for i in indices if self.toks[i].stem in EVALUATOR_NOUNS]
        evaluative += self.after_conversation(indices)
        if evaluative and "evaluator" not in kinds:
            for cand in found:
                if cand.kind in ("action", "service") and cand.verb in EVALUATIVE_VERBS:
                    cand.kind = "evaluator"
                    kinds.add("evaluator")
                    break
            else:
                loose = [i for i in evaluative if not self.consumed[i]]
                if loose:
                    found.append(self.noun_component("evaluator", loose[0], sentence))
                    kinds.add("evaluator")
        adverbs = [
            i
            for i in indices
            if not self.consumed[i]
            and (
                self.is_service_adverb(i)
                # "a service that sends reminders": the service is the subject
                or (
                    self.toks[i].stem in SERVICE_NOUNS
                    and self.at(i + 1).word in ("that", "which", "to")
                    and not self.is_external(i)
                )
            )
        ]
        if adverbs and "service" not in kinds:
            for cand in found:
                if cand.kind == "action":
                    cand.kind = "service"
                    cand.generic = cand.verb in GENERIC_VERBS and not cand.words
                    kinds.add("service")
                    break
            else:
                found.append(self.noun_component("service", adverbs[0], sentence))
                kinds.add("service")
        nouns = [
            i
            for i in indices
            if not self.consumed[i]
            and self.toks[i].stem in SERVICE_NOUNS
            and not self.is_external(i)
        ]
        if nouns and "service" not in kinds:
            found.append(self.noun_component("service", nouns[0], sentence))
            kinds.add("service")
        facts = [i for i in indices if not self.consumed[i] and self.toks[i].stem in PROVIDER_NOUNS]
        if facts and "provider" not in kinds:
            found.append(self.noun_component("provider", facts[0], sentence))

    def is_service_adverb(self, i: int) -> bool:
        tok = self.toks[i]
        if tok.stem in SERVICE_ADVERBS:
            return True
        if tok.word in ("every", "each"):
            k = i + 1
            while self.at(k).word.isdigit() or self.at(k).word in ("few", "couple", "of"):
                k += 1
            return self.at(k).word in TIME_UNITS
        return False

    def after_conversation(self, indices: list[int]) -> list[int]:
        out: list[int] = []
        for i in indices:
            if self.toks[i].word != "after":
                continue
            k = i + 1
            while self.at(k).word in DETERMINERS:
                k += 1
            if self.at(k).word in CONVERSATION_WORDS:
                out.append(i)
        return out

    def noun_component(self, kind: Kind, i: int, sentence: int) -> _Candidate:
        """A component made by a noun or adverb, named after the words around it."""
        tok = self.toks[i]
        words: list[str] = []
        if self.at(i + 1).word in ("about", "of", "on", "for"):
            k = i + 2
            while self.at(k).word in DETERMINERS or self.at(k).word in ADDRESSEES:
                k += 1
            while _is_content(self.at(k)) and len(words) < 2 and self.at(k).word[0].isalpha():
                words.append(self.at(k).word)
                k += 1
        if not words:
            k = i - 1
            before: list[str] = []
            while (
                _is_content(self.at(k))
                and not self.consumed[k]
                and len(before) < 2
                and self.at(k).stem not in VERB_KIND
                and self.at(k).word not in TOPIC_FILLERS
            ):
                before.insert(0, self.at(k).word)
                k -= 1
            words = before
        generic = tok.stem in SERVICE_ADVERBS or tok.word in ("every", "each", "after")
        noun = [] if generic or tok.word in SERVICE_NOUNS else [tok.word]
        self.consumed[i] = True
        return _Candidate(kind, "", words + noun, [], sentence, generic=not (words + noun))


# --------------------------------------------------------------------------- naming

SUFFIX: dict[Kind, str] = {
    "action": "",
    "provider": "Provider",
    "service": "Service",
    "evaluator": "Evaluator",
}
VERB_WORDS: dict[str, list[str]] = {"lookup": ["look", "up"]}


def _takes_core_service_type(name: str) -> bool:
    return bool({kebab(name), "_".join(words(name))} & CORE_SERVICE_TYPES)


def _pascal(words: Sequence[str], suffix: str = "") -> str:
    limit = MAX_COMPONENT_NAME_LENGTH - len(suffix)
    name = ""
    for word in words:
        part = word[:1].upper() + word[1:]
        if len(name) + len(part) > limit:
            break
        name += part
    name += suffix
    if not name or not name[0].isalpha():
        name = ("Plugin" + name)[:MAX_COMPONENT_NAME_LENGTH]
    return name


def _camel(words: Sequence[str]) -> str:
    name = _pascal(words)
    return name[:1].lower() + name[1:]


def _method_name(words: Sequence[str]) -> str:
    """A camelCase method name that is not a member Service already has ("runTime")."""
    for prefix in ([], ["run"], ["run", "task"]):
        name = _camel([*prefix, *words])
        if name.lower() not in RESERVED_METHOD_NAMES:
            return name
    raise AssertionError("unreachable: runTask... is never reserved")


def _topic_words(topic: Sequence[str]) -> list[str]:
    return [w for w in topic if w[0].isalpha()] or ["plugin", *topic]


def _env_prefix(words: Sequence[str]) -> str:
    prefix = "_".join(w.upper() for w in words if w)
    if not prefix or not prefix[0].isalpha():
        prefix = "PLUGIN_" + prefix if prefix else "PLUGIN"
    return prefix[:40].rstrip("_")


@dataclass
class _Env:
    name: str
    description: str
    required: bool
    sensitive: bool


NEGATIONS = _words("no without not never none free needs nt dont doesnt zero")


def _negated(toks: list[_Tok], i: int) -> bool:
    """Whether a credential word is said not to be needed: a negation a few words before."""
    for k in range(i - 1, max(-1, i - 4), -1):
        tok = toks[k]
        if tok.is_break or tok.sentence != toks[i].sentence:
            return False
        if tok.word in NEGATIONS:
            return tok.word != "needs" or (k + 1 < len(toks) and toks[k + 1].word == "no")
    return False


def _environment(toks: list[_Tok], topic: Sequence[str]) -> list[_Env]:
    found: dict[str, _Env] = {}

    def at(i: int) -> _Tok:
        return toks[i] if 0 <= i < len(toks) else _Tok(BREAK, BREAK, -1)

    def vendor(i: int) -> list[str]:
        t = at(i)
        if (
            _is_content(t)
            and t.word[0].isalpha()
            and t.word not in TOPIC_FILLERS
            and t.word not in ENV_WORDS
            and t.word not in COIN_WORDS
            and t.stem not in VERB_KIND
            and len(t.word) <= 20
        ):
            return [t.word]
        return list(topic)

    def add(prefix: list[str], suffix: str, what: str, required: bool, sensitive: bool) -> None:
        name = f"{_env_prefix(prefix)}_{suffix}"
        if name not in found and len(found) < MAX_ENVIRONMENT:
            label = " ".join(prefix) or "the plugin"
            text = f"{what} for {label}"[:MAX_SUMMARY_LENGTH]
            found[name] = _Env(name, text, required, sensitive)

    for i, tok in enumerate(toks):
        word, nxt, prev = tok.word, at(i + 1), at(i - 1)
        if _negated(toks, i):
            continue  # "no API key required", "without an API key"
        head = not _is_content(nxt) or nxt.word in ENV_WORDS
        if word == "apikey" or (word == "api" and nxt.word in ("key", "keys")):
            add(vendor(i - 1), "API_KEY", "API key", True, True)
        elif word in ("key", "keys") and prev.word in KEY_QUALIFIERS and prev.word != "api":
            add(vendor(i - 2), f"{prev.word.upper()}_KEY", f"{prev.word} key", True, True)
        elif word in ("token", "tokens") and head:
            if prev.word in TOKEN_QUALIFIERS:
                add(vendor(i - 2), f"{prev.word.upper()}_TOKEN", f"{prev.word} token", True, True)
            elif prev.word not in COIN_WORDS:
                add(vendor(i - 1), "TOKEN", "Access token", True, True)
        elif word in ("secret", "secrets") and head:
            if prev.word in SECRET_QUALIFIERS:
                add(vendor(i - 2), f"{prev.word.upper()}_SECRET", f"{prev.word} secret", True, True)
            else:
                add(vendor(i - 1), "SECRET", "Secret", True, True)
        elif word in ENV_HEADS:
            suffix, sensitive, required = ENV_HEADS[word]
            add(vendor(i - 1), suffix, suffix.lower().capitalize(), required, sensitive)
        elif word in ("url", "urls") and prev.word == "webhook":
            add(vendor(i - 2), "WEBHOOK_URL", "Webhook URL", True, True)
        elif (word in ("url", "urls") and prev.word in URL_QUALIFIERS) or word in (
            "endpoint",
            "endpoints",
        ):
            add(list(topic), "API_URL", "API base URL (optional)", False, False)
    return list(found.values())


# --------------------------------------------------------------------------- assembly


def _sentence_texts(prose: str) -> list[str]:
    return [s for s in (collapse(p) for p in _SENTENCE_END.split(prose)) if s]


_CLAUSE_BREAK = re.compile(r",|;|\band\b|\bthen\b|\bbut\b|\bwhile\b|\bwhen\b")


def _build(candidates: list[_Candidate], topic: list[str], sentences: list[str]) -> dict[str, Any]:
    limits: dict[Kind, int] = {
        "action": MAX_ACTIONS,
        "provider": MAX_PROVIDERS,
        "service": MAX_SERVICES,
        "evaluator": MAX_EVALUATORS,
    }
    lists: dict[Kind, list[dict[str, Any]]] = {k: [] for k in limits}
    taken: set[str] = set()
    named_topic = _topic_words(topic)

    def describe(sentence: int) -> str:
        text = sentences[sentence] if 0 <= sentence < len(sentences) else ""
        return _shorten(text, MAX_SUMMARY_LENGTH) or "Part of the plugin."

    def own(cand: _Candidate) -> str:
        """The clause of the sentence that holds the component, else the sentence."""
        text = sentences[cand.sentence] if 0 <= cand.sentence < len(sentences) else ""
        for clause in _CLAUSE_BREAK.split(text):
            found = [stem(w) for w in _TOKEN.findall(_ascii_fold(clause)) if w[0].isalnum()]
            key = cand.verb or (cand.words[0] if cand.words else "")
            if key and key in found and len(clause.split()) > 1:
                return _sentence_case(clause.strip()) or describe(cand.sentence)
        return describe(cand.sentence)

    def parameters(params: list[_Param]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for p in params:
            name = _camel(p.words)
            if name.lower() in seen or len(out) >= MAX_PARAMETERS:
                continue
            seen.add(name.lower())
            out.append(
                {
                    "name": name,
                    "description": f"The {' '.join(p.words)}.",
                    "type": "number" if p.number else "string",
                }
            )
        return out

    def claim(name: str) -> bool:
        keys = {name.lower(), kebab(name)}
        if keys & taken:
            return False
        taken.update(keys)
        return True

    for cand in candidates:
        if len(lists[cand.kind]) >= limits[cand.kind]:
            continue
        verb = VERB_WORDS.get(cand.verb, [cand.verb] if cand.verb else [])
        obj = cand.words or named_topic
        if cand.generic:
            base = named_topic
        elif cand.kind in ("provider", "evaluator") and cand.verb in PROVIDER_VERBS:
            base = obj
        else:
            base = verb + obj
        name = _pascal(base, SUFFIX[cand.kind])
        if cand.kind == "service" and _takes_core_service_type(name):
            # "MessageService" is @elizaos/core's message_service: make it the plugin's own.
            name = _pascal(["plugin", *base], SUFFIX[cand.kind])
        if not claim(name):
            continue
        entry: dict[str, Any] = {"name": name, "description": own(cand)}
        if cand.kind == "action":
            entry["parameters"] = parameters(cand.params)
        elif cand.kind == "service" and (cand.verb or cand.params):
            method = _method_name(verb + obj)
            entry["methods"] = [
                {
                    "name": method,
                    "description": own(cand),
                    "parameters": parameters(cand.params),
                }
            ][:MAX_METHODS]
        lists[cand.kind].append(entry)

    if not any(lists.values()):
        action = _pascal(["get", *named_topic])
        provider = _pascal(named_topic, "Provider")
        summary = _shorten(" ".join(sentences), MAX_SUMMARY_LENGTH) or "Part of the plugin."
        label = " ".join(named_topic)
        if claim(action):
            what = _shorten(f"Answers a request about {label}: {summary}", MAX_SUMMARY_LENGTH)
            lists["action"].append({"name": action, "description": what, "parameters": []})
        if claim(provider):
            what = f"Gives the agent context about {label} when it is asked for."
            lists["provider"].append({"name": provider, "description": what})
    return {
        "actions": lists["action"],
        "providers": lists["provider"],
        "services": lists["service"],
        "evaluators": lists["evaluator"],
    }


def spec_from_prose(prose: str, allowed_dependencies: Mapping[str, str] | None) -> PluginSpec:
    prose = prose[:MAX_DESCRIPTION_LENGTH]
    description = collapse(prose)
    if not description:
        raise SpecError(
            [
                "description: is empty; say what the plugin should do, e.g. "
                "'a weather plugin that reports the current temperature for a city'"
            ]
        )
    sentences = _sentence_texts(prose)
    toks = _tokenise(sentences)
    if not any(not t.is_break for t in toks):
        raise SpecError(["description: has no words (letters or digits) to make a plugin from"])
    reader = _Reader(toks)
    topic = reader.topic_before_plugin() or reader.topic_after_plugin()
    named = [m for sentence in sentences for m in explicit.mentions(sentence)]
    candidates = [] if named else reader.read()
    if not topic:
        topic = _subject(toks)
    if not topic and named:
        topic = _topic_of(named[0])
    if not topic and not candidates:
        topic = _compound(prose)
    if not topic:
        for cand in candidates:
            if cand.words and not cand.generic:
                verb = VERB_WORDS.get(cand.verb, [cand.verb])
                if cand.verb in PROVIDER_VERBS or cand.verb in GENERIC_VERBS or not cand.verb:
                    verb = []
                topic = [w for w in verb + cand.words if w not in TOPIC_FILLERS]
                break
    if not topic:
        topic = reader.first_content_words()
    topic = [w for w in topic if len(w) <= MAX_WORD_LENGTH][:MAX_TOPIC_WORDS] or ["custom"]
    components = _build_named(named, topic) if named else _build(candidates, topic, sentences)
    data: dict[str, Any] = {
        "name": "plugin-" + "-".join(topic),
        "description": description,
        **components,
        "environment": [
            {
                "name": env.name,
                "description": env.description,
                "required": env.required,
                "sensitive": env.sensitive,
            }
            for env in _with_written_names(_environment(_env_tokens(prose), topic), prose)
        ],
    }
    return validate_spec(data, allowed_dependencies)


# --------------------------------------------------------------------------- named


SUBJECT_SKIP = (
    STOPWORDS
    | TOPIC_FILLERS
    | ENV_WORDS
    | _words("action actions provider providers service services evaluator evaluators")
    | _words("request requests response responses message messages current free")
)


def _subject(toks: list[_Tok]) -> list[str]:
    """What the description is about: its most repeated content noun ("tip" in "send a
    tip ... tipping requests" -> "tipping"), preferring an -ing form it uses."""
    counts: dict[str, int] = {}
    forms: dict[str, list[str]] = {}
    for tok in toks:
        word = tok.word
        if tok.is_break or word in SUBJECT_SKIP or not word.isalpha() or len(word) < 3:
            continue
        if tok.stem in VERB_KIND or tok.stem in SERVICE_ADVERBS:
            continue
        key = explicit.base_verb(word)
        counts[key] = counts.get(key, 0) + 1
        forms.setdefault(key, []).append(word)
    repeated = [key for key, n in counts.items() if n > 1]
    if not repeated:
        return []
    best = max(repeated, key=lambda key: counts[key])  # first of the most frequent
    gerund = [w for w in forms[best] if w.endswith("ing")]
    head = gerund[0] if gerund else best
    return [*_modifier(toks, forms[best][0]), head]


def _modifier(toks: list[_Tok], word: str) -> list[str]:
    """The noun before the subject's first use, when there is one ("wallet balances")."""
    for i, tok in enumerate(toks):
        if tok.word == word and i > 0:
            prev = toks[i - 1]
            if (
                _is_content(prev)
                and prev.word.isalpha()
                and prev.stem not in VERB_KIND
                and prev.word not in SUBJECT_SKIP
                and prev.word not in FILLER_ADJECTIVES
            ):
                return [prev.word]
            return []
    return []


def _topic_of(mention: explicit.Mention) -> list[str]:
    """A topic from the first named component: SEND_TIP -> tip, searchDocs -> docs."""
    if mention.name:
        parts = words(_given_name(mention.name))
        return parts[1:] if len(parts) > 1 and parts[0] in VERB_KIND else parts
    return mention.object or mention.prefix


_COMPOUND = re.compile(r"\b[A-Za-z]+(?:-[A-Za-z]+)+\b")


def _compound(prose: str) -> list[str]:
    """A hyphenated compound among the first words names a topic: text-to-speech."""
    head = " ".join(prose.split()[:5])
    match = _COMPOUND.search(head)
    return match.group(0).lower().split("-")[:MAX_TOPIC_WORDS] if match else []


_NAMED_IDENTIFIER = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def _env_tokens(prose: str) -> list[_Tok]:
    """Tokens for credential words, with written identifiers left out (TRANSFER_TOKENS)."""
    cleaned = _NAMED_IDENTIFIER.sub(
        lambda m: m.group(0) if m.group(0).endswith(explicit.ENV_SUFFIXES) else " ", prose
    )
    return _tokenise(_sentence_texts(cleaned))


def _named_base(mention: explicit.Mention, topic: Sequence[str]) -> list[str]:
    if mention.kind == "provider":
        return mention.prefix or mention.object or ([mention.verb] if mention.verb else [])
    if mention.prefix:
        return mention.prefix
    verb = VERB_WORDS.get(mention.verb, [mention.verb] if mention.verb else [])
    return verb + mention.object or list(topic)


def _given_name(name: str) -> str:
    """SEND_TIP -> SendTip, searchDocs -> SearchDocs, "wallet balance" -> WalletBalance."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    if len(parts) == 1 and not name.isupper():
        return _pascal(words(parts[0]))
    return _pascal([p.lower() for p in parts])


def _sentence_case(text: str) -> str:
    text = _shorten(text, MAX_SUMMARY_LENGTH)
    if not text:
        return ""
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _build_named(named: list[explicit.Mention], topic: list[str]) -> dict[str, Any]:
    """Exactly the components the description names: kinds, count, names, parameters."""
    lists: dict[str, list[dict[str, Any]]] = {k: [] for k in SUFFIX}
    taken: set[str] = set()
    for mention in named:
        if mention.name:
            name = _given_name(mention.name)
        else:
            name = _pascal(_named_base(mention, _topic_words(topic)), SUFFIX[mention.kind])
        if mention.kind == "service" and _takes_core_service_type(name):
            name = _pascal(["plugin", *words(name)])
        keys = {name.lower(), kebab(name)}
        if keys & taken:
            continue
        taken |= keys
        label = " ".join(mention.object or mention.prefix or words(name))
        what = (
            mention.clause
            or {
                "action": f"{' '.join(words(name))}",
                "provider": f"Provides {label}",
                "service": f"Runs {label}",
                "evaluator": f"Evaluates {label}",
            }[mention.kind]
        )
        if mention.kind == "provider" and not mention.verb and mention.clause:
            what = "Provides " + mention.clause[:1].lower() + mention.clause[1:]
        if mention.params:
            what = re.sub(r"\s*\([^)]*\)", "", what)  # the parameters are listed apart
            if what.split(" ", 1)[0].lower() in explicit.TAKES:
                what = ""  # "Takes a symbol." says what it needs, not what it does
        if not what and mention.kind == "action":
            what = _action_phrase(words(name))
        described = _sentence_case(what) or _sentence_case(" ".join(words(name)))
        entry: dict[str, Any] = {"name": name, "description": described}
        params = _named_parameters(mention.params)
        if mention.kind == "action":
            entry["parameters"] = params
        elif mention.kind == "service" and (mention.verb or params):
            verb = VERB_WORDS.get(mention.verb, [mention.verb] if mention.verb else [])
            entry["methods"] = [
                {
                    "name": _method_name(verb + mention.object or ["handle", *topic]),
                    "description": entry["description"],
                    "parameters": params,
                }
            ]
        lists[mention.kind].append(entry)
    limits = {"action": MAX_ACTIONS, "provider": MAX_PROVIDERS}
    limits |= {"service": MAX_SERVICES, "evaluator": MAX_EVALUATORS}
    return {f"{kind}s": items[: limits[kind]] for kind, items in lists.items()}


def _action_phrase(parts: Sequence[str]) -> str:
    """GetTokenPrice -> "Get the token price": the action described by its name."""
    if len(parts) < 2:
        return " ".join(parts)
    return " ".join([parts[0], "the", *parts[1:]])


def _named_parameters(params: list[explicit.NamedParam]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for param in params:
        name = _camel(param.words)
        if not name or name.lower() in seen or len(out) >= MAX_PARAMETERS:
            continue
        seen.add(name.lower())
        out.append(
            {"name": name, "description": f"The {' '.join(param.words)}.", "type": param.type}
        )
    return out


def _with_written_names(found: list[_Env], prose: str) -> list[_Env]:
    """Variables the description writes out (WEATHER_API_KEY) replace guessed ones."""
    written = explicit.env_names(prose)
    if not written:
        return found
    out: list[_Env] = []
    for name in written[:MAX_ENVIRONMENT]:
        secret = name.endswith(("_KEY", "_TOKEN", "_SECRET", "_PASSWORD"))
        optional = name.endswith(("_URL", "_ENDPOINT", "_HOST"))
        what = " ".join(name.lower().split("_"))
        out.append(_Env(name, f"The {what}.", not optional, secret))
    return out
