"""Socket reads and deadlines at one system call per read, for the warm call's path.

A Python socket with a timeout polls before every recv and send: two system calls, and two
releases of the GIL, each of which, with a dozen gateway threads waiting for it, hands it
to another thread and waits to get it back. Measured at concurrency 8, that contention
cost more CPU per call than the call's own work. Here sockets stay in blocking mode and
the kernel enforces the deadline (SO_RCVTIMEO / SO_SNDTIMEO): a read is one recv, and a
read past the deadline fails with EAGAIN, which SocketReader turns into TimeoutError.
"""

from __future__ import annotations

import socket
import struct

CHUNK = 65536
MAX_CHUNK = 1 << 20


def kernel_timeout(sock: socket.socket, seconds: float | None, *, send: bool = True) -> None:
    """Blocking mode, with reads (and writes, if send) that fail after `seconds` (None: never)."""
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    if seconds is None:
        value = struct.pack("ll", 0, 0)
    else:
        seconds = max(seconds, 0.001)
        value = struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    if send:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


class SocketReader:
    """The part of a buffered reader that an HTTP parser needs (peek, read, readline) on a
    socket: a read past the socket's kernel deadline raises TimeoutError; b"" is the end."""

    __slots__ = ("sock", "buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, want: int = CHUNK) -> bool:
        try:
            data = self.sock.recv(min(max(want, CHUNK), MAX_CHUNK))
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise TimeoutError("timed out") from None
        if not data:
            return False
        self.buf += data
        return True

    def peek(self, n: int = 1) -> bytes:
        """What is buffered, reading once if nothing is (b"" at the end of the stream)."""
        if not self.buf:
            self._fill()
        return bytes(self.buf)

    def read(self, n: int) -> bytes:
        """n bytes, fewer only at the end of the stream."""
        while len(self.buf) < n:
            if not self._fill(n - len(self.buf)):
                break
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def readline(self, limit: int = CHUNK) -> bytes:
        """Up to and including the next b"\\n", at most limit bytes."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start, limit)
            if i >= 0:
                return self.read(i + 1)
            if len(self.buf) >= limit:
                return self.read(limit)
            start = len(self.buf)
            if not self._fill():
                return self.read(len(self.buf))

    def close(self) -> None:
        """The socket is its owner's to close."""
