"""Inverse standard-normal CDF (Wichura's AS241, PPND16) on float64 tensors.

Monotone in u, so it keeps the stratification of quasirandom inputs, and one uniform gives one
normal, so element i of a tensor depends on index i alone. The Horner order matches _fill.c exactly.
"""

from __future__ import annotations

import torch

CENTRAL_NUM = (
    2.5090809287301226727e3,
    3.3430575583588128105e4,
    6.7265770927008700853e4,
    4.5921953931549871457e4,
    1.3731693765509461125e4,
    1.9715909503065514427e3,
    1.3314166789178437745e2,
    3.3871328727963666080e0,
)
CENTRAL_DEN = (
    5.2264952788528545610e3,
    2.8729085735721942674e4,
    3.9307895800092710610e4,
    2.1213794301586595867e4,
    5.3941960214247511077e3,
    6.8718700749205790830e2,
    4.2313330701600911252e1,
    1.0,
)
NEAR_NUM = (
    7.74545014278341407640e-4,
    2.27238449892691845833e-2,
    2.41780725177450611770e-1,
    1.27045825245236838258e0,
    3.64784832476320460504e0,
    5.76949722146069140550e0,
    4.63033784615654529590e0,
    1.42343711074968357734e0,
)
NEAR_DEN = (
    1.05075007164441684324e-9,
    5.47593808499534494600e-4,
    1.51986665636164571966e-2,
    1.48103976427480074590e-1,
    6.89767334985100004550e-1,
    1.67638483018380384940e0,
    2.05319162663775882187e0,
    1.0,
)
FAR_NUM = (
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    1.24266094738807843860e-3,
    2.65321895265761230930e-2,
    2.96560571828504891230e-1,
    1.78482653991729133580e0,
    5.46378491116411436990e0,
    6.65790464350110377720e0,
)
FAR_DEN = (
    2.04426310338993978564e-15,
    1.42151175831644588870e-7,
    1.84631831751005468180e-5,
    7.86869131145613259100e-4,
    1.48753612908506148525e-2,
    1.36929880922735805310e-1,
    5.99832206555887937690e-1,
    1.0,
)


def horner(coeffs: tuple[float, ...], r: torch.Tensor) -> torch.Tensor:
    v = r * coeffs[0]
    for c in coeffs[1:-1]:
        v.add_(c).mul_(r)
    return v.add_(coeffs[-1])


def ndtri(p: torch.Tensor) -> torch.Tensor:
    """Φ⁻¹(p) for float64 p strictly inside (0, 1)."""
    q = p - 0.5
    r = 0.180625 - q * q
    out = q * horner(CENTRAL_NUM, r) / horner(CENTRAL_DEN, r)
    tail = q.abs() > 0.425
    if bool(tail.any()):
        qt, pt = q[tail], p[tail]
        rt = torch.where(qt < 0, pt, 1.0 - pt).log_().neg_().sqrt_()
        near = rt <= 5.0
        x = torch.where(near, rt - 1.6, rt - 5.0)
        v = torch.where(near, horner(NEAR_NUM, x) / horner(NEAR_DEN, x), horner(FAR_NUM, x) / horner(FAR_DEN, x))
        out[tail] = torch.where(qt < 0, -v, v)
    return out
