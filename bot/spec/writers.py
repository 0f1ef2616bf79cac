"""Spec writers: the seam between a description and its PluginSpec.

``KeywordSpecWriter`` reads a fenced spec block or, without one, the words of the
description (:mod:`bot.spec.keywords`); ``GivenSpecWriter`` hands over a spec the caller
already has; :mod:`bot.spec.model_writer` has the model write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from bot.spec.blocks import clean_input, spec_from_block, split_fences
from bot.spec.keywords import spec_from_prose
from bot.spec.schema import MAX_DESCRIPTION_LENGTH, PluginSpec, SpecError

# A spec block can be longer than a description (it holds every component), so the
# whole text is bounded separately; the prose is then cut to MAX_DESCRIPTION_LENGTH.
MAX_INPUT_CHARS = 10 * MAX_DESCRIPTION_LENGTH


def spec_from_description(
    text: str, allowed_dependencies: Mapping[str, str] | None = None
) -> PluginSpec:
    """A validated PluginSpec for ``text``, or SpecError saying what is wrong."""
    if not isinstance(text, str):
        raise SpecError([f"description: must be text, not {type(text).__name__}"])
    cleaned = clean_input(text[:MAX_INPUT_CHARS])
    fence, prose = split_fences(cleaned)
    if fence is not None:
        return spec_from_block(fence, prose, allowed_dependencies)
    return spec_from_prose(prose, allowed_dependencies)


@runtime_checkable
class SpecWriter(Protocol):
    """Something that turns a comment's description into a PluginSpec."""

    @property
    def name(self) -> str:
        """Who wrote the spec, for the job's notes: ``keywords``, ``model`` or ``given``."""
        ...

    async def write(self, description: str) -> PluginSpec: ...


class KeywordSpecWriter:
    """The deterministic writer: :func:`spec_from_description`, no model involved."""

    name = "keywords"

    def __init__(self, allowed_dependencies: Mapping[str, str] | None = None) -> None:
        self.allowed_dependencies = allowed_dependencies

    async def write(self, description: str) -> PluginSpec:
        return spec_from_description(description, self.allowed_dependencies)


class GivenSpecWriter:
    """A spec the caller already has (``create --spec FILE``)."""

    name = "given"

    def __init__(self, spec: PluginSpec) -> None:
        self.spec = spec

    async def write(self, description: str) -> PluginSpec:
        return self.spec
