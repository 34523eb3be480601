"""argparse's parser and help formatters, sized without importing ``shutil``.

argparse makes a help formatter for every ``add_argument`` call, and its formatter imports
``shutil`` for the terminal width: 3 ms of every CI step's start-up, for help text that is
almost never printed. These read the width the way ``shutil.get_terminal_size`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def terminal_columns() -> int:
    """``$COLUMNS``, else the width of the terminal on stdout, else 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Sized:
    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)  # type: ignore[call-arg]


class HelpFormatter(_Sized, argparse.HelpFormatter):
    """argparse's default formatter."""


class RawDescriptionHelpFormatter(_Sized, argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs printed as written."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose formatter (and its subparsers') is one of the above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
