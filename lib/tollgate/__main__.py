"""``python -m tollgate``."""

from tollgate._cli import entry

entry()
