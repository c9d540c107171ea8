"""Native-bf16 detection from CPU flags decides the default precision on a CPU."""

from pruning_core.hardware import BF16_CPU_FLAGS, cpu_flags, describe_cpu

INTEL_SPR = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
OLD_XEON = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"


def test_flags_are_read_from_cpuinfo_text():
    assert {"avx512_bf16", "amx_bf16"} <= cpu_flags(INTEL_SPR)
    assert not cpu_flags(OLD_XEON) & set(BF16_CPU_FLAGS)
    assert cpu_flags("no flags here") == set()


def test_describe_cpu_names_the_answer():
    line = describe_cpu()
    assert "native bf16: yes" in line or "native bf16: no" in line
