"""What the command-line tools print: log lines above Lightning's progress bars, no library noise."""

from __future__ import annotations

import logging
import sys
import warnings


class TqdmHandler(logging.Handler):
    """Log lines printed above Lightning's progress bars (tqdm.write) instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001  (logging must never raise)
            self.handleError(record)


def setup() -> None:
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Lightning 2.6 + torch 2.14 warn about their own pytree internals on every fit; not the user's business
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
