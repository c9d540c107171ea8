"""What the processor can do natively, so the default precision follows the hardware."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags (Linux ``/proc/cpuinfo``); empty where they cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on an x86 CPU with AVX512-BF16 or AMX-BF16 units (bf16 matmuls faster than fp32)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return bool(cpu_flags() & set(BF16_CPU_FLAGS))


def describe_cpu() -> str:
    """One line for benchmark and report records: architecture and whether bf16 is native."""
    native = [flag for flag in BF16_CPU_FLAGS if flag in cpu_flags()]
    return f"{platform.machine()} cpu, native bf16: {'yes (' + ', '.join(native) + ')' if native else 'no'}"
