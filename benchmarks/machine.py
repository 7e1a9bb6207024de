"""One line naming the machine a benchmark ran on, for printed reports, CSVs and plot titles."""

import os
import pathlib
import platform

import jax

from ssync_jax.models import precision


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo), else what `platform` knows of it."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def instruction_sets() -> str:
    """The vector instruction sets that decide XLA:CPU's speed, e.g. "AVX2, AVX-512, AVX512-BF16"."""
    flags = precision.cpu_flags()
    named = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
    present = [name for flag, name in named.items() if flag in flags]
    return ", ".join(present) or "no AVX2"


def describe() -> str:
    """E.g. "2-core CPU (AMD EPYC; AVX2, AVX-512, AVX512-BF16; x86_64 Linux), jax 0.10.2 on cpu (cpu)"."""
    device = jax.devices()[0]
    return (
        f"{os.cpu_count()}-core CPU ({cpu_model()}; {instruction_sets()}; {platform.machine()} {platform.system()}), "
        f"jax {jax.__version__} on {device.platform} ({device.device_kind})"
    )
