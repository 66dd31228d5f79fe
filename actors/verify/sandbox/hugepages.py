"""Transparent huge pages for the zygote's heap: cheaper forks and exits for every child.

A warm zygote holds ~200 MB of anonymous memory (Qiskit, Aer, SciPy and the plugins a
transpile loads). With 4 KiB pages each fork copies ~50k page-table entries and each child's exit
unmaps them again; that is most of the fixed cost of a verification. Mapped as 2 MiB pages, the
same heap is ~100 PMD entries. A child that writes to a huge page gets that page table split and
copies only the 4 KiB it touched (Linux >= 5.8), so copy-on-write stays fine-grained.

Two steps, both harmless where the kernel lacks THP: glibc's ``glibc.malloc.hugetlb=1`` tunable
(set in the zygote's environment, see :data:`MALLOC_TUNABLE`) asks for huge pages as the heap
grows, and :func:`collapse_heap` (``MADV_COLLAPSE``, Linux >= 6.1) folds what is already mapped
once the zygote is set up. Python has no ``madvise`` on arbitrary addresses, hence ctypes.
"""

from __future__ import annotations

import ctypes

MALLOC_TUNABLE = "glibc.malloc.hugetlb=1"
"""GLIBC_TUNABLES value for the zygote: malloc's heap is madvise(MADV_HUGEPAGE)d as it grows."""

MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20


def anonymous_regions(maps: str) -> list[tuple[int, int]]:
    """(start, end) of private writable anonymous mappings (the heap and mmap'd arenas) in the
    text of /proc/<pid>/maps."""
    regions = []
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        path = fields[5] if len(fields) > 5 else ""
        if path in ("", "[heap]"):
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            regions.append((start, end))
    return regions


def huge_extents(start: int, end: int) -> range:
    """Start addresses of the whole, aligned 2 MiB pages inside [start, end)."""
    first = (start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    return range(first, end & ~(HUGE_PAGE - 1), HUGE_PAGE)


def collapse_heap() -> int:
    """Fold this process's anonymous memory into huge pages where the kernel can; returns the
    MiB collapsed (0 where MADV_COLLAPSE is unsupported or THP is off)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as maps:
        regions = anonymous_regions(maps.read())
    collapsed = 0
    for start, end in regions:
        for address in huge_extents(start, end):
            # Fails (EINVAL, EAGAIN, ENOMEM) on extents that are unpopulated, locked or not
            # eligible: those stay as they are.
            if libc.madvise(address, HUGE_PAGE, MADV_COLLAPSE) == 0:
                collapsed += 1
    return collapsed * (HUGE_PAGE >> 20)
