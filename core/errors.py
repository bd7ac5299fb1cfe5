"""Errors a user can act on. The CLI prints them as one clear line on stderr and exits non-zero."""

from __future__ import annotations

__all__ = ["MraError", "NotFound", "ValidationFailed"]


class MraError(Exception):
    """An expected failure with a message meant for the person at the keyboard."""

    exit_code = 1


class NotFound(MraError):
    """Something named on the command line or in an event does not exist."""

    exit_code = 3


class ValidationFailed(MraError):
    """Input was read but rejected; ``reasons`` says every way it was wrong."""

    exit_code = 2

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = list(reasons or [])

    def __str__(self) -> str:
        base = super().__str__()
        return base if not self.reasons else base + "\n" + "\n".join(f"  - {r}" for r in self.reasons)
