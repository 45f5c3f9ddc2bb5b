"""Factories that pass their `**config` on to a class declare it, so config keys stay checked.

A factory such as ``build_unet(pretrained=None, **config)`` builds ``UNet(**config)`` and then does one more thing
(loads weights). Its own signature accepts any keyword, which would let a misspelled `model.model_chanels` through
validation. ``@passes_keywords_to(UNet)`` gives it the signature it really has — its own named parameters, then
UNet's — for `inspect.signature` and `typing.get_type_hints` (the validator's import-based pass), and
:mod:`sarexp.config.signatures` reads the same decorator from source (the pass before torch is imported).
"""

import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

Factory = TypeVar("Factory", bound=Callable[..., Any])
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def passes_keywords_to(target: Callable[..., Any]) -> Callable[[Factory], Factory]:
    """Declare that the decorated factory passes its `**kwargs` to `target` (a class or function): every
    parameter is keyword-only, the factory's own first, then target's; type hints are merged the same way."""

    def declare(factory: Factory) -> Factory:
        signature, theirs = inspect.signature(factory), inspect.signature(target).parameters.values()
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values() if p.kind in NAMED]
        names = {parameter.name for parameter in own}
        passed = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in theirs if p.kind in NAMED
                  and p.name not in names]
        any_keyword = [p for p in theirs if p.kind is inspect.Parameter.VAR_KEYWORD]
        factory.__signature__ = signature.replace(parameters=[*own, *passed, *any_keyword])
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
        hints = {name: hint for name, hint in hints.items() if name in {p.name for p in passed}}
        own_hints = typing.get_type_hints(factory)
        factory.__annotations__ = {**hints, **{name: own_hints[name] for name in own_hints
                                               if name in names or name == "return"}}
        return factory

    return declare
