"""The entry points let glibc keep freed memory for reuse (device.keep_freed_memory): a large tensor then
comes from malloc's heap, whose freed memory the next forward pass reuses, instead of a mapping of its
own that is returned to the system when the tensor is freed (and faulted in afresh on the next pass)."""

import platform
import subprocess
import sys

import pytest

MAPPED_BYTES_OF_A_NEW_TENSOR = """
import ctypes, sys, torch
from fastdiff.device import keep_freed_memory

class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "kept":
    assert keep_freed_memory()
before = libc.mallinfo2().hblkhd
x = torch.ones(2**24)  # 64 MiB
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_large_tensor_comes_from_the_heap_not_a_mapping_of_its_own():
    def mapped_bytes(mode):
        run = subprocess.run([sys.executable, "-c", MAPPED_BYTES_OF_A_NEW_TENSOR, mode], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    assert mapped_bytes("default") >= 2**26
    assert mapped_bytes("kept") == 0
