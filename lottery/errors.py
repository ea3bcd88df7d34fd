"""How a command ends, as exit codes: the one-line errors the command-line tools print instead of a
traceback. Torch-free, so the CLIs can catch them without importing the training stack."""

from __future__ import annotations

EXIT_FINISHED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 2, 3


class Diverged(RuntimeError):
    """Training produced non-finite loss or weights; the message says what and when (exit 3)."""
