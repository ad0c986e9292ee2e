"""Host fingerprint carried by every ostoolkit report.

Process and thread costs depend on the CPU, the kernel's preemption model, virtualisation,
speculative-execution mitigations, the clocksource and the frequency governor, so each report
records them. File reads go through ``root`` so tests can supply a fake /proc and /sys; values
that come from syscalls are read live. A field that cannot be read is "unknown"; nothing raises.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from pathlib import Path
from typing import Any

import psutil

from ostoolkit.cgroup import cpu_limits, tightest_limit

UNKNOWN = "unknown"

# debugfs sched/preempt lists every mode and wraps the active one, e.g. "none (voluntary) full".
_ACTIVE_MODE = re.compile(r"[(\[]\s*([^)\]\s]+)\s*[)\]]")


def _read_text(path: Path) -> str | None:
    """Return the stripped contents of path, or None if it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except (OSError, ValueError):
        return None


def _cpuinfo(root: Path) -> list[tuple[str, str]]:
    """Parse proc/cpuinfo into (key, value) pairs in file order; [] if unreadable (proc(5))."""
    pairs = []
    for line in (_read_text(root / "proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


def _cpu_model(cpuinfo: list[tuple[str, str]]) -> str:
    """CPU name: x86 "model name", else "Processor" (old arm) or "cpu model" (mips); keys match
    case-sensitively because x86 also has a lowercase "processor" (the CPU index)."""
    for wanted in ("model name", "Processor", "cpu model"):
        for key, value in cpuinfo:
            if key == wanted and value:
                return value
    return UNKNOWN


def _hypervisor(cpuinfo: list[tuple[str, str]]) -> bool | str:
    """Whether the x86 CPUID "hypervisor" flag is set, i.e. we run in a VM; "unknown" off x86."""
    for key, value in cpuinfo:
        if key == "flags":
            return "hypervisor" in value.split()
    return UNKNOWN


def _tlb_tagging(cpuinfo: list[tuple[str, str]]) -> str:
    """Whether TLB entries carry an address-space tag, so a process switch need not flush them. x86
    reports it as the "pcid" flag; arm64 ("Features" line) always tags entries with ASIDs."""
    for key, value in cpuinfo:
        if key == "flags":
            return "pcid" if "pcid" in value.split() else "none"
        if key == "Features":
            return "asid"
    return UNKNOWN


def tlb_tagging(root: Path = Path("/")) -> str:
    """This host's TLB tagging ("pcid", "asid", "none" or "unknown"), for explaining results."""
    return _tlb_tagging(_cpuinfo(root))


def _cmdline_param(root: Path, name: str) -> str | None:
    """Value of the last name=... kernel boot parameter; words after "--" belong to init."""
    value = None
    for word in (_read_text(root / "proc/cmdline") or "").split():
        if word == "--":
            break
        if word.startswith(f"{name}="):
            value = word.partition("=")[2]
    return value


def _preemption(root: Path) -> str:
    """Kernel preemption model: the active mode from debugfs, else the uname -v build tag. The tag
    is PREEMPT_RT, PREEMPT_DYNAMIC or PREEMPT (scripts/mkcompile_h); a PREEMPT_DYNAMIC kernel's mode
    is then known only from preempt= on the command line."""
    active = _ACTIVE_MODE.search(_read_text(root / "sys/kernel/debug/sched/preempt") or "")
    if active:
        return f"dynamic ({active.group(1)})"
    tags = (_read_text(root / "proc/sys/kernel/version") or platform.version()).split()
    if not tags:
        return UNKNOWN
    if "PREEMPT_RT" in tags:
        return "rt"
    if "PREEMPT_DYNAMIC" in tags:
        return f"dynamic ({_cmdline_param(root, 'preempt') or 'mode unknown'})"
    if "PREEMPT" in tags:
        return "full"
    return "none/voluntary"


def _dmi(root: Path) -> str:
    """Board vendor and product from sysfs DMI (world-readable, unlike serial numbers)."""
    dmi = root / "sys/class/dmi/id"
    parts = [_read_text(dmi / name) for name in ("sys_vendor", "product_name")]
    return " ".join(part for part in parts if part) or UNKNOWN


def _container(root: Path) -> str:
    """Container runtime: marker files, then PID 1's cgroup path, then the $container variable.
    Under cgroup v2 with a cgroup namespace proc/1/cgroup is just "0::/" and says nothing."""
    if os.path.exists(root / ".dockerenv"):
        return "docker"
    if os.path.exists(root / "run/.containerenv"):
        return "podman"
    cgroup = _read_text(root / "proc/1/cgroup") or ""
    # kubepods first: Kubernetes cgroup paths also contain "docker-<id>.scope".
    for marker in ("kubepods", "lxc", "docker"):
        if marker in cgroup:
            return marker
    # systemd's Container Interface names it lowercase "container", so SIM112 does not apply.
    return os.environ.get("container") or "none"  # noqa: SIM112


def _mitigations(root: Path) -> dict[str, str]:
    """CPU vulnerability name -> mitigation status (Documentation/admin-guide/hw-vuln/)."""
    directory = root / "sys/devices/system/cpu/vulnerabilities"
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    return {name: _read_text(directory / name) or UNKNOWN for name in names}


def _clocksource(root: Path) -> str:
    """Active clocksource; clock_gettime is a cheap vDSO call only for tsc-like sources."""
    path = root / "sys/devices/system/clocksource/clocksource0/current_clocksource"
    return _read_text(path) or UNKNOWN


def _governor(root: Path) -> str:
    """cpu0's cpufreq governor; most VMs expose no cpufreq at all, which is worth saying."""
    cpu = root / "sys/devices/system/cpu"
    governor = _read_text(cpu / "cpu0/cpufreq/scaling_governor")
    if governor:
        return governor
    if os.path.isdir(cpu) and not os.path.exists(cpu / "cpu0/cpufreq"):
        return "none (no cpufreq)"
    return UNKNOWN


def _cpus_allowed() -> list[int] | str:
    """CPUs this process may run on (affinity and cpuset), which can be fewer than cpus_logical."""
    try:
        return sorted(os.sched_getaffinity(0))
    except OSError:
        return UNKNOWN


def _cpu_quota() -> dict[str, Any] | str:
    """The CFS quota that binds this process hardest (``ostoolkit.cgroup``), or "none". In CPUs (0.2
    is a fifth of one CPU's time) with its quota, period and group folder: a quota stops the
    measured tasks mid-sample, which the other-tasks share does not show."""
    limit = tightest_limit(cpu_limits())
    if limit is None:
        return "none"
    return {
        "cpus": round(limit.cpus, 4),
        "quota_us": limit.quota_us,
        "period_us": limit.period_us,
        "cgroup": str(limit.folder),
    }


def _loadavg() -> list[float] | str:
    """1, 5 and 15 minute load averages: a busy host skews every measurement."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return UNKNOWN


def collect_host(root: Path = Path("/")) -> dict[str, Any]:
    """Return this host's fingerprint as a JSON-serialisable dict; file reads are under root."""
    cpuinfo = _cpuinfo(root)
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(cpuinfo),
        "cpus_logical": psutil.cpu_count(logical=True) or UNKNOWN,
        "cpus_allowed": _cpus_allowed(),
        "cpu_quota": _cpu_quota(),
        "kernel": platform.release() or UNKNOWN,
        "preemption": _preemption(root),
        "tlb_tagging": _tlb_tagging(cpuinfo),
        "virtualization": {
            "hypervisor": _hypervisor(cpuinfo),
            "dmi": _dmi(root),
            "container": _container(root),
        },
        "mitigations": _mitigations(root),
        "clocksource": _clocksource(root),
        "governor": _governor(root),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loadavg": _loadavg(),
    }
