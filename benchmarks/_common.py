"""Shared plumbing for benchmarks: machine description, timing, and writing results (JSON + PNG).

Every benchmark runs rszoo and the named alternative side by side in one process and reports ratios. Results go to
``benchmarks/results/<name>.json`` and ``<name>.png`` and are committed with the machine they ran on.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, Python and key library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    for mod in ("torch", "transformers", "lightning", "trl", "numpy"):
        m = sys.modules.get(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    return info


def timeit(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median/min/mean wall time of ``fn`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "mean_s": statistics.fmean(times)}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _glibc() -> Any:
    """glibc, for allocator settings that make RSS track the arrays actually alive (None off glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()
_M_MMAP_THRESHOLD = -3


def track_memory_exactly() -> None:
    """Fix glibc's mmap threshold: big arrays are mmapped and returned on free, so one phase's freed buffers cannot
    hide the next phase's allocations (glibc otherwise raises the threshold dynamically). Call once, before
    :func:`measure`."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def measure(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Median/min wall time over ``repeat`` calls and the peak RSS increase (MiB) during them (Linux)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)  # hand memory freed by earlier phases back to the OS before taking the baseline
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "repeats": repeat,
        "peak_rss_increase_mib": max(0, _status_kib("VmHWM") - before) / 1024,
    }


def save_result(name: str, data: dict[str, Any], figure: Any | None = None) -> Path:
    """Write ``results/<name>.json`` (with machine info and date) and ``results/<name>.png`` if a figure is given."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **data,
    }
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    if figure is not None:
        figure.savefig(RESULTS / f"{name}.png", dpi=120, bbox_inches="tight")
    print(json.dumps(payload, indent=2))
    return out
