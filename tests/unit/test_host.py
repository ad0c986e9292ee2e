"""Tests for ostoolkit.host: the live host, an empty root and a hand-written fake /proc, /sys."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from ostoolkit.host import collect_host

KEYS = {
    "hostname",
    "cpu_model",
    "cpus_logical",
    "cpus_allowed",
    "cpu_quota",
    "kernel",
    "preemption",
    "tlb_tagging",
    "virtualization",
    "mitigations",
    "clocksource",
    "governor",
    "python",
    "loadavg",
}

CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Fake CPU @ 2.00GHz
flags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm

processor\t: 1
model name\t: Second CPU Must Not Win
flags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm
"""


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def no_container_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("container", raising=False)


def test_real_host_has_every_key_and_is_json() -> None:
    host = collect_host()
    assert set(host) == KEYS
    assert set(host["virtualization"]) == {"hypervisor", "dmi", "container"}
    json.dumps(host)
    assert isinstance(host["cpus_logical"], int)
    assert host["cpus_allowed"]
    assert set(host["cpus_allowed"]) <= set(range(host["cpus_logical"]))
    assert host["kernel"] == platform.release()
    assert len(host["loadavg"]) == 3


@pytest.mark.usefixtures("no_container_env")
def test_empty_root_gives_unknown_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "version", lambda: "")
    host = collect_host(tmp_path)
    assert set(host) == KEYS
    assert host["cpu_model"] == "unknown"
    assert host["preemption"] == "unknown"
    assert host["tlb_tagging"] == "unknown"
    assert host["virtualization"] == {
        "hypervisor": "unknown",
        "dmi": "unknown",
        "container": "none",
    }
    assert host["mitigations"] == {}
    assert host["clocksource"] == "unknown"
    assert host["governor"] == "unknown"
    json.dumps(host)


def test_unreadable_files_give_unknown(tmp_path: Path) -> None:
    (tmp_path / "proc/cpuinfo").mkdir(parents=True)  # a directory: read_text raises OSError
    write(tmp_path, "proc/cmdline", "preempt=full")
    write(tmp_path, "sys/devices/system/cpu/vulnerabilities", "not a directory")
    host = collect_host(tmp_path)
    assert host["cpu_model"] == "unknown"
    assert host["virtualization"]["hypervisor"] == "unknown"
    assert host["mitigations"] == {}


@pytest.mark.usefixtures("no_container_env")
def test_fake_tree_is_parsed_exactly(tmp_path: Path) -> None:
    write(tmp_path, "proc/cpuinfo", CPUINFO)
    vulns = "sys/devices/system/cpu/vulnerabilities"
    write(tmp_path, f"{vulns}/meltdown", "Not affected\n")
    write(tmp_path, f"{vulns}/spectre_v2", "Mitigation: Retpolines; STIBP: disabled\n")
    write(tmp_path, "sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n")
    write(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance\n")
    write(tmp_path, "sys/kernel/debug/sched/preempt", "none voluntary (full) lazy\n")
    write(tmp_path, "proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC Thu Jan 1 00:00:00 UTC")
    write(tmp_path, "sys/class/dmi/id/sys_vendor", "QEMU\n")
    write(tmp_path, "sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)\n")
    write(tmp_path, ".dockerenv", "")

    host = collect_host(tmp_path)

    assert host["cpu_model"] == "Intel(R) Xeon(R) Fake CPU @ 2.00GHz"
    assert host["preemption"] == "dynamic (full)"
    assert host["virtualization"] == {
        "hypervisor": True,
        "dmi": "QEMU Standard PC (Q35 + ICH9, 2009)",
        "container": "docker",
    }
    assert host["mitigations"] == {
        "meltdown": "Not affected",
        "spectre_v2": "Mitigation: Retpolines; STIBP: disabled",
    }
    assert host["clocksource"] == "tsc"
    assert host["governor"] == "performance"


def test_hypervisor_flag_absent_is_false(tmp_path: Path) -> None:
    write(tmp_path, "proc/cpuinfo", CPUINFO.replace(" hypervisor", ""))
    assert collect_host(tmp_path)["virtualization"]["hypervisor"] is False


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (
            "processor\t: 0\nProcessor\t: AArch64 Processor rev 4 (aarch64)\n",
            "AArch64 Processor rev 4 (aarch64)",
        ),
        (
            "system type\t: MT7621\nprocessor\t: 0\ncpu model\t: MIPS 1004Kc V2.15\n",
            "MIPS 1004Kc V2.15",
        ),
        ("processor\t: 0\nBogoMIPS\t: 48.00\n", "unknown"),
    ],
)
def test_cpu_model_fallbacks(tmp_path: Path, cpuinfo: str, expected: str) -> None:
    write(tmp_path, "proc/cpuinfo", cpuinfo)
    assert collect_host(tmp_path)["cpu_model"] == expected


@pytest.mark.parametrize(
    ("version", "cmdline", "expected"),
    [
        ("#1 SMP PREEMPT_RT Mon Jan 1 2024", "", "rt"),
        ("#1 SMP PREEMPT_DYNAMIC Mon Jan 1 2024", "quiet splash", "dynamic (mode unknown)"),
        ("#1 SMP PREEMPT_DYNAMIC Mon Jan 1 2024", "quiet preempt=voluntary", "dynamic (voluntary)"),
        (
            "#1 SMP PREEMPT_DYNAMIC Mon Jan 1 2024",
            "quiet -- preempt=full",
            "dynamic (mode unknown)",
        ),
        ("#1 SMP PREEMPT Mon Jan 1 2024", "", "full"),
        ("#1 SMP Mon Jan 1 2024", "", "none/voluntary"),
    ],
)
def test_preemption_from_version_string(
    tmp_path: Path, version: str, cmdline: str, expected: str
) -> None:
    write(tmp_path, "proc/sys/kernel/version", version)
    write(tmp_path, "proc/cmdline", cmdline)
    assert collect_host(tmp_path)["preemption"] == expected


def test_governor_without_cpufreq(tmp_path: Path) -> None:
    (tmp_path / "sys/devices/system/cpu/cpu0").mkdir(parents=True)
    assert collect_host(tmp_path)["governor"] == "none (no cpufreq)"


@pytest.mark.parametrize(
    ("files", "env", "expected"),
    [
        ({"run/.containerenv": ""}, None, "podman"),
        ({"proc/1/cgroup": "0::/kubepods/burstable/pod1/docker-abc.scope\n"}, None, "kubepods"),
        ({"proc/1/cgroup": "0::/lxc.payload.web\n"}, None, "lxc"),
        ({"proc/1/cgroup": "12:cpu:/docker/abc\n"}, None, "docker"),
        ({"proc/1/cgroup": "0::/\n"}, "systemd-nspawn", "systemd-nspawn"),
    ],
)
def test_container_detection(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    env: str | None,
    expected: str,
) -> None:
    monkeypatch.delenv("container", raising=False)
    if env is not None:
        monkeypatch.setenv("container", env)
    for relative, text in files.items():
        write(tmp_path, relative, text)
    assert collect_host(tmp_path)["virtualization"]["container"] == expected


def test_tlb_tagging_from_flags(tmp_path):
    from ostoolkit.host import tlb_tagging

    (tmp_path / "proc").mkdir()
    cpuinfo = tmp_path / "proc/cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu pcid sse\n")
    assert tlb_tagging(tmp_path) == "pcid"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse\n")
    assert tlb_tagging(tmp_path) == "none"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert tlb_tagging(tmp_path) == "asid"
    cpuinfo.unlink()
    assert tlb_tagging(tmp_path) == "unknown"
