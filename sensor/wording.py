"""How the sensor words what it tells a person: a count with its noun in the right number (``1 port``,
``2 ports``). Every layer may use it; it holds no state."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 port``, ``0 ports``, ``3 ports``; ``plural`` where adding an s is wrong."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
