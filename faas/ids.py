"""Request and trace ids, cheaply: they are made on every call.

uuid.uuid4() reads the kernel's random source (a system call) each time; ids that only need
to be unique, not secret, come from the random module, which is a fraction of the cost.
"""

from __future__ import annotations

import random
import time

_bits = random.getrandbits


_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def request_id() -> str:
    """A version-4 UUID string, as Lambda's request ids are."""
    h = f"{(_bits(128) & _CLEAR) | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def trace_id() -> str:
    """An X-Ray trace header value, as Lambda passes in Lambda-Runtime-Trace-Id."""
    return f"Root=1-{int(time.time()):08x}-{_bits(96):024x};Parent={_bits(64):016x};Sampled=0"
