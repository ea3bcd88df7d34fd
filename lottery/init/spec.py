"""The typed description of an initialisation start. It round-trips through YAML, JSON and checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from lottery import checks
from lottery.init.schemes import SCHEMES

SOURCES = ("hash", "sobol", "sobol-paper", "torch", "vae", "ghn")
LEARNED = ("vae", "ghn")  # decoded by a trained generator file (lottery.init.learned)
BIAS_RULES = ("zeros", "torch")
MAX_SEED = checks.MAX_SEED
SOBOL_DIMS = 21201


# the names as types, so that argument parsers built from signatures (LightningCLI's jsonargparse) refuse a
# misspelled name while parsing, in a few lines that list the choices; schemes registered after this import
# are accepted by InitSpec itself but not by such a parser
SchemeName = Literal[tuple(sorted(SCHEMES))]  # type: ignore[valid-type]
SourceName = Literal[SOURCES]  # type: ignore[valid-type]
BiasRule = Literal[BIAS_RULES]  # type: ignore[valid-type]


def choice_error(field: str, value: object, choices: Any) -> ValueError:
    return checks.invalid(field, value, f"choose one of {', '.join(map(str, choices))}")


@dataclass(frozen=True)
class InitSpec:
    """A start: which scheme, how wide, from which source of uniforms, with which seed.

    ``scale`` multiplies the scheme's std (normal schemes), bound (uniform) or gain (orthogonal, ZerO):
    0.5 and 2 are the "half" and "double" variants of Wijnja et al. 2020. ``bias``: ``zeros`` (default,
    as OpenLTH and the QRNG paper) or ``torch`` (U(±1/√fan_in) like ``nn.Linear``, from the hash source).
    ``sobol_start_dim`` is the 1-based Sobol' dimension of the first weight tensor in ``sobol-paper`` mode.
    ``generator``: the generator file of a learned source (``vae``, ``ghn``), named by its content hash; the
    scheme is then unused and ``scale`` multiplies the generated weights.
    """

    seed: int = 0
    scheme: SchemeName = "xavier_normal"
    scale: float = 1.0
    source: SourceName = "hash"
    bias: BiasRule = "zeros"
    sobol_start_dim: int = 1
    generator: str | None = None

    def __post_init__(self) -> None:
        checks.seed("init.seed", self.seed)
        if self.scheme not in SCHEMES:
            raise choice_error("init.scheme", self.scheme, sorted(SCHEMES))
        if self.source not in SOURCES:
            raise choice_error("init.source", self.source, SOURCES)
        if self.bias not in BIAS_RULES:
            raise choice_error("init.bias", self.bias, BIAS_RULES)
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"init.scale: {scale!r} is not valid; use a finite number > 0 (0.5 = half, 2 = double)")
        object.__setattr__(self, "scale", float(scale))
        if self.source in LEARNED and not self.generator:
            raise ValueError(f"init.generator: init.source {self.source!r} needs a generator file; fit one with "
                             f"python -m lottery.generative fit {self.source} … and give its path")
        if self.generator is not None and self.source not in LEARNED:
            raise ValueError(f"init.generator: {self.generator!r} is only used by init.source vae or ghn, "
                             f"not {self.source!r}; remove it or change the source")
        if self.generator is not None:
            object.__setattr__(self, "generator", str(self.generator))
        dim = self.sobol_start_dim
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= SOBOL_DIMS:
            raise ValueError(f"init.sobol_start_dim: {dim!r} is not valid; use an integer in 1..{SOBOL_DIMS}")

    @property
    def regenerable(self) -> bool:
        return self.source != "torch"

    @property
    def label(self) -> str:
        """Short human name, e.g. ``xavier_normal×0.5/sobol``."""
        scale = "" if self.scale == 1.0 else f"×{self.scale:g}"
        if self.generator is not None:
            return f"{Path(self.generator).stem}{scale}"
        return f"{self.scheme}{scale}/{self.source}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InitSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"init: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> InitSpec:
        return InitSpec.from_dict({**self.to_dict(), **changes})
