"""Old spellings of gibloss 0.1, accepted until 0.3 with a ``DeprecationWarning``.

One place for the mechanics: positional arguments that became keyword-only
(:func:`keyword_only_since`), and renamed or re-scoped keywords (:func:`warn_renamed`). Estimator
names are resolved by :func:`gibloss.estimators.resolve_name`.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["REMOVAL", "keyword_only_since", "warn_renamed"]

#: The release that removes the old spellings.
REMOVAL = "0.3"

F = TypeVar("F", bound=Callable[..., Any])


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that the spelling ``old`` is deprecated in favour of ``new``."""
    warnings.warn(
        f"{old} is deprecated and will be removed in gibloss {REMOVAL}; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


#: Keyword-only parameters added after 0.1: never a positional value of an old call.
_SINCE_0_2 = ("spec", "null")


def keyword_only_since(func: F) -> F:
    """Accept, with a warning, positional values for ``func``'s keyword-only parameters.

    The parameters after ``*`` in ``func``'s signature were positional in 0.1; a call that
    still passes them by position is mapped onto them in order and warned once per call.
    """
    sig = inspect.signature(func)
    positional = [
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    keyword_only = [
        p.name
        for p in sig.parameters.values()
        if p.kind == p.KEYWORD_ONLY and p.name not in _SINCE_0_2
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        extra = len(args) - len(positional)
        if extra > 0:
            if extra > len(keyword_only):
                raise TypeError(
                    f"{func.__name__}() takes {len(positional)} positional arguments "
                    f"but {len(args)} were given"
                )
            names = keyword_only[:extra]
            for name, value in zip(names, args[len(positional) :], strict=True):
                if name in kwargs:
                    raise TypeError(f"{func.__name__}() got multiple values for `{name}`")
                kwargs[name] = value
            args = args[: len(positional)]
            pretty = ", ".join(f"{n}=..." for n in names)
            warn_renamed(
                f"passing {', '.join(names)} of {func.__name__}() by position",
                f"keywords ({pretty})",
            )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
