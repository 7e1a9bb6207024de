"""One line naming the machine a benchmark ran on, for printed reports, CSVs and plot titles."""

import os
import pathlib
import platform

import jax


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo), else what `platform` knows of it."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> str:
    """E.g. "2-core CPU (AMD EPYC, x86_64 Linux), jax 0.10.2 on cpu (cpu)"; the first jax device."""
    device = jax.devices()[0]
    return (
        f"{os.cpu_count()}-core CPU ({cpu_model()}, {platform.machine()} {platform.system()}), "
        f"jax {jax.__version__} on {device.platform} ({device.device_kind})"
    )
