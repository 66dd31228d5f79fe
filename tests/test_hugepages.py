"""The zygote's heap as huge pages: which regions are folded, and that a zygote really folds them."""

from pathlib import Path

import pytest

from actors.verify.config import VerifierConfig
from actors.verify.forkserver import ForkServer
from actors.verify.hugepages import HUGE_PAGE, anonymous_regions, collapse_heap, huge_extents

MAPS = """\
55d0c0000000-55d0c0400000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000600000 rw-p 00000000 00:00 0 
7f0000600000-7f0000800000 r--p 00000000 08:01 1234                       /usr/lib/libc.so.6
7f0000800000-7f0000a00000 rw-p 00000000 08:01 1234                       /usr/lib/libc.so.6
7f0000a00000-7f0000c00000 rw-s 00000000 00:01 99                         /dev/zero (deleted)
7f0000c00000-7f0000e00000 ---p 00000000 00:00 0 
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_private_writable_anonymous_memory_is_folded():
    assert anonymous_regions(MAPS) == [(0x55d0c0000000, 0x55d0c0400000), (0x7f0000000000, 0x7f0000600000)]


def test_extents_are_whole_aligned_huge_pages():
    assert list(huge_extents(0, 3 * HUGE_PAGE)) == [0, HUGE_PAGE, 2 * HUGE_PAGE]
    assert list(huge_extents(4096, 3 * HUGE_PAGE)) == [HUGE_PAGE, 2 * HUGE_PAGE]
    assert list(huge_extents(4096, 2 * HUGE_PAGE - 4096)) == []


def _thp_available() -> bool:
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return setting.exists() and "[never]" not in setting.read_text()


def test_collapse_never_fails_and_reports_mebibytes():
    assert collapse_heap() % 2 == 0


@pytest.mark.slow
@pytest.mark.skipif(not _thp_available(), reason="transparent huge pages are off on this kernel")
def test_a_zygote_folds_its_warm_heap():
    folded = ForkServer(VerifierConfig(), 0, "inprocess")
    plain = ForkServer(VerifierConfig(huge_pages=False), 1, "inprocess")
    try:
        assert folded.huge_mb >= 32, folded.huge_mb
        assert plain.huge_mb == 0
        huge_kb = {server.slot: _anon_huge_kb(server.pid) for server in (folded, plain)}
        assert huge_kb[0] > huge_kb[1]
    finally:
        folded.close()
        plain.close()


def _anon_huge_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0
