"""Builds the optional C kernels; everything else lives in pyproject.toml.

The extension is optional: without a C compiler the package installs and falls back to the
(slower, bit-identical) torch implementation.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "lottery.generators._fill",
            sources=["lottery/generators/_fill.c"],
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"],
            optional=True,
        )
    ]
)
