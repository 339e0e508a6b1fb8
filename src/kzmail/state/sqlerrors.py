"""The one place where SQLite's errors become kzmail's: `StateError`, chained.

`mapped` wraps every public method of a state class (functions, generators and coroutines),
so a locked, full or damaged database reaches the services as one `StateError` naming the
file, and no code outside `state/` ever catches `sqlite3.Error` itself.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kzmail.errors import StateError

T = TypeVar("T")


@contextmanager
def sqlite_errors(path: Path | str) -> Iterator[None]:
    """Turn an `sqlite3.Error` raised inside into a `StateError` that names `path`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StateError(f"the state database {path} failed: {exc}") from exc


def _wrap(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
            with sqlite_errors(self.path):
                return await method(self, *args, **kwargs)

        return coroutine
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            with sqlite_errors(self.path):
                return (yield from method(self, *args, **kwargs))

        return generator

    @functools.wraps(method)
    def function(self: Any, *args: Any, **kwargs: Any) -> Any:
        with sqlite_errors(self.path):
            return method(self, *args, **kwargs)

    return function


F = TypeVar("F", bound=Callable[..., Any])


def unmapped(method: F) -> F:
    """Leave a method out of `mapped`: for the per-message hot path, whose only database
    calls go through methods `mapped` wraps (a wrapper per call costs a few µs)."""
    method.__kzmail_unmapped__ = True  # type: ignore[attr-defined]
    return method


def mapped(cls: type[T]) -> type[T]:
    """Class decorator: every public method maps `sqlite3.Error` to `StateError`
    (except those marked `unmapped`).

    The class has a `path` attribute (the database file) for the message.
    """
    for name, member in list(vars(cls).items()):
        if getattr(member, "__kzmail_unmapped__", False):
            continue
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _wrap(member))
    return cls
