"""The no-model parser: description prose -> PluginSpec, by whole words."""

from bot.spec.keywords.parser import VERB_KIND, VOCAB, spec_from_prose, stem

__all__ = ["VERB_KIND", "VOCAB", "spec_from_prose", "stem"]
