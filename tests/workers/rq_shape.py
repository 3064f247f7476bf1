"""Checks that RQ still has the shape our workers were written against: the methods
workers/worker.py and workers/cron.py override or call take the same parameters, the
attributes they read are still RQ's, and the names they add are not RQ's too. RQ is
pinned in pyproject.toml; a new RQ that changes any of these fails by name."""

from __future__ import annotations

import inspect
import re


def shape(method) -> str:
    """A method's parameters as a line: names, * and ** for the variadic ones, defaults
    (annotations left out, as Python versions print them differently)."""
    parts = []
    for p in inspect.signature(method).parameters.values():
        text = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(p.kind.name, "") + p.name
        if p.default is not p.empty:
            text += f"={p.default!r}"
        parts.append(text)
    return ", ".join(parts)


def check_method(owner: type, name: str, expected: str, user: str) -> None:
    """Fail, naming user, if owner.name is gone or no longer has the expected shape."""
    method = getattr(owner, name, None)
    assert callable(method), f"RQ's {owner.__name__}.{name} is gone: {user} relies on it"
    assert shape(method) == expected, (
        f"RQ's {owner.__name__}.{name} is now ({shape(method)}), not ({expected}):"
        f" {user} overrides or calls it as ({expected})"
    )


def _sources(owner: type) -> str:
    """The source of owner and of each of its bases that is RQ's."""
    return "\n".join(
        inspect.getsource(c) for c in owner.__mro__ if c.__module__.split(".")[0] == "rq"
    )


def check_reads(owner: type, names: list[str], user: str) -> None:
    """Fail if RQ's owner no longer has (or sets) one of the attributes user reads."""
    source = _sources(owner)
    for name in names:
        # Set in a method (self.name = or, annotated, self.name: T =), or a class attribute.
        assigned = re.search(rf"self\.{name}\s*(:[^=\n]*)?=[^=]", source)
        assert hasattr(owner, name) or assigned, (
            f"RQ's {owner.__name__} no longer sets {name}: {user} reads it"
        )


def check_own(owner: type, names: list[str], user: str) -> None:
    """Fail if RQ's owner has come to use one of the names user adds for itself."""
    source = _sources(owner)
    for name in names:
        assert not hasattr(owner, name) and f"self.{name}" not in source, (
            f"RQ's {owner.__name__} now has a {name} of its own: {user} adds one that would"
            " take its place"
        )
