"""The environment that made a record: what a result's floats depend on besides its config and seed.

    python -m lottery.environment            # this machine's, as every record would carry it
    python -m lottery.environment RUN_DIR    # a record's, and what differs here

Training is deterministic for one config, seed and environment; across environments (another torch, another
CPU code path, another BLAS) the floats differ from the first step while w0 (a pure integer hash) does not.
So every record (``results.json``, ``rounds.json``, a ticket, a grid's table) carries ``environment()``, and
``mismatches`` says which of the fields that decide the floats differ between two of them: only where none
does is a bit-for-bit comparison meaningful.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from lottery.generators import has_kernel

PACKAGES = ("torch", "torchvision", "numpy", "pytorch-lightning", "scipy", "lottery")
# The CPU instruction-set extensions that torch, oneDNN and MKL dispatch on: two CPUs with the same set run the
# same kernels (the same model name is not needed, and not enough: a hypervisor may hide some of them).
ISA = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
       "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")
# Variables that change which kernels run (threads are recorded as torch uses them; Lightning sets cuBLAS's
# workspace itself for deterministic runs)
VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
             "NVIDIA_TF32_OVERRIDE")
# The fields that decide a run's floats; the rest (scipy, torchvision, the platform string) are for the reader
DECIDING = ("python", "torch", "numpy", "pytorch-lightning", "machine", "cpu_vendor", "cpu_isa", "cpu_capability",
            "blas", "threads", "variables", "device", "cuda", "cudnn", "gpu")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo() -> tuple[str, str, list[str]]:
    """(vendor, model name, ISA extensions among ``ISA``) from /proc/cpuinfo; the platform's words elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.machine(), platform.processor() or "unknown", []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    vendor = fields.get("vendor_id") or fields.get("CPU implementer") or platform.machine()
    return vendor, fields.get("model name") or platform.processor() or "unknown", [f for f in ISA if f in flags]


def _blas() -> str:
    """BLAS and LAPACK torch was built with (``torch.__config__.show()``), with MKL's version where present."""
    shown = torch.__config__.show()
    parts = [m.group(0).replace(" ", "") for m in re.finditer(r"(BLAS_INFO|LAPACK_INFO)=\s*[^,\s]+", shown)]
    mkl = re.search(r"Intel\(R\) (?:oneAPI )?Math Kernel Library Version ([\d.]+)", shown)
    if mkl:
        parts.append(f"MKL={mkl.group(1)}")
    return ",".join(parts) or "unknown"


def environment(device: str = "cpu") -> dict[str, Any]:
    """This process's environment as a record carries it; ``device``: the run's device type (``cpu``,
    ``cuda``, ``mps``), whose own versions are recorded only when the run used it."""
    vendor, model, isa = _cpuinfo()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        **{name: _version(name) for name in PACKAGES},
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_vendor": vendor,
        "cpu": model,
        "cpu_isa": " ".join(isa),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": _blas(),
        "threads": torch.get_num_threads(),
        "c_kernel": has_kernel(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "variables": {k: os.environ[k] for k in VARIABLES if k in os.environ},
        "device": device,
    }
    if device == "cuda" and torch.cuda.is_available():
        env.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   gpu=torch.cuda.get_device_name(), tf32=torch.backends.cuda.matmul.allow_tf32,
                   cudnn_deterministic=torch.backends.cudnn.deterministic)
    return env


def environments_of(folder: Path) -> list[dict[str, Any]]:
    """The environments a run directory trained in, in order (``environment.json``; empty when absent or not
    a list of objects, which a record then shows as not recorded)."""
    try:
        data = json.loads((folder / "environment.json").read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) and all(isinstance(e, dict) for e in data) else []


def mismatches(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Each field that decides the floats and differs, as ``field: recorded …, here …``; a record without an
    environment (made before records carried one) gives one line saying so."""
    if not isinstance(recorded, dict):
        return ["environment: not recorded (the record predates records that carry their environment)"]
    return [f"{k}: recorded {recorded.get(k)!r}, here {current.get(k)!r}" for k in DECIDING
            if recorded.get(k) != current.get(k)]


def environment_id(env: dict[str, Any] | None) -> str:
    """A short name for the deciding fields (``unrecorded`` without an environment): the grid table's column."""
    if not isinstance(env, dict):
        return "unrecorded"
    deciding = json.dumps({k: env.get(k) for k in DECIDING}, sort_keys=True, default=str)
    return hashlib.sha256(deciding.encode()).hexdigest()[:8]


def describe(env: dict[str, Any]) -> str:
    """One line for a reader: versions, CPU and its code path, threads, and the GPU where one was used."""
    gpu = f", {env['gpu']} (CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')})" if env.get("gpu") else ""
    return (f"Python {env.get('python')}, torch {env.get('torch')}, numpy {env.get('numpy')}, Lightning "
            f"{env.get('pytorch-lightning')}; {env.get('cpu')} ({env.get('machine')}, {env.get('cpu_capability')}"
            f"; {env.get('blas')}), {env.get('threads')} thread(s){gpu}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    here = environment()
    if not args:
        print(json.dumps(here, indent=2))
        return 0
    file = Path(args[0]) / "results.json" if Path(args[0]).is_dir() else Path(args[0])
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        print(f"error: {file}: not a readable JSON record ({type(e).__name__}); give a run directory or its "
              "results.json", file=sys.stderr)
        return 2
    recorded = record.get("environment") if isinstance(record, dict) else None
    here["threads"] = recorded.get("threads") if isinstance(recorded, dict) else here["threads"]  # a run sets its own
    found = mismatches(recorded, here)
    print(f"{file}: " + ("same environment: a retrain reproduces it bit for bit" if not found else
                         "another environment:\n  " + "\n  ".join(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
