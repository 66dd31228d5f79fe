"""The zygote's heap as huge pages: which regions are folded, and that a zygote really folds them."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from actors.verify.config import VerifierConfig
from actors.verify.forkserver import ForkServer
from actors.verify.sandbox.hugepages import HUGE_PAGE, anonymous_regions, huge_extents
from tests.conftest import ROOT

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


def _madv_collapse_available() -> bool:
    """MADV_COLLAPSE exists from Linux 6.1 and needs THP not set to ``never``."""
    major, minor = (int(part) for part in re.findall(r"\d+", os.uname().release)[:2])
    return _thp_available() and (major, minor) >= (6, 1)


COLLAPSE_A_POPULATED_HEAP = """
import json
from actors.verify.sandbox.hugepages import collapse_heap

def anon_huge_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1]) // 1024
    return 0

block = bytearray(b"\\x01") * (64 << 20)  # 64 MiB of malloc'd (private anonymous), every page written
collapsed = collapse_heap()
print(json.dumps({"collapsed_mb": collapsed, "anon_huge_mb": anon_huge_mb()}))
"""


def test_collapse_folds_a_populated_heap_into_real_huge_pages():
    """collapse_heap's figure is real: a fresh process with 64 MiB of written heap reports (nearly) all of
    it folded, and the kernel counts at least that much as huge pages; where MADV_COLLAPSE is missing
    it reports 0."""
    result = subprocess.run([sys.executable, "-c", COLLAPSE_A_POPULATED_HEAP], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if not _madv_collapse_available():
        assert figures["collapsed_mb"] == 0, figures
        return
    # 64 MiB that need not start on a 2 MiB boundary hold at least 31 whole huge pages.
    assert figures["collapsed_mb"] >= 62, figures
    assert figures["anon_huge_mb"] >= figures["collapsed_mb"], figures


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
