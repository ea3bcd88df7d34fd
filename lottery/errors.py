"""How a command ends, as exit codes: the one-line errors the command-line tools print instead of a
traceback. Torch-free, so the CLIs can catch them without importing the training stack."""

from __future__ import annotations

EXIT_FINISHED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal's number, as a shell reports a process it killed
EXIT_SIGPIPE = 141  # the reader of our output went away (`... --list | head`), as a shell tool dying of SIGPIPE


class Diverged(RuntimeError):
    """Training produced non-finite loss or weights; the message says what and when (exit 3)."""


class Interrupted(RuntimeError):
    """A signal stopped the run before it finished (SIGTERM: a scheduler's preemption or time limit; SIGINT:
    Ctrl+C); ``code`` is the exit status a scheduler should see, never 0."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
