"""Socket reads and deadlines at one system call per read, for the warm call's path.

A Python socket with a timeout polls before every recv and send: two system calls, and two
releases of the GIL, each of which, with a dozen gateway threads waiting for it, hands it
to another thread and waits to get it back. Measured at concurrency 8, that contention
cost more CPU per call than the call's own work. Here sockets stay in blocking mode and
the kernel enforces the deadline (SO_RCVTIMEO / SO_SNDTIMEO): a read is one recv, and a
read past the deadline fails with EAGAIN, which SocketReader turns into TimeoutError.
"""

from __future__ import annotations

import select
import socket
import struct
import time

CHUNK = 65536
MAX_CHUNK = 1 << 20
# A read this soon after the kernel timeout was set to the time left needs no re-arming: it
# can overrun the deadline by at most this much.
REARM_SLACK_S = 0.005


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


def sendall_by(sock: socket.socket, data: bytes, deadline: float) -> None:
    """sendall, ending by `deadline` (time.monotonic()) however slowly the peer reads.

    A blocking send cannot be bounded: the kernel restarts SO_SNDTIMEO for every buffer it
    waits for, so a peer that reads a little now and then keeps one send going indefinitely.
    Each send here takes only what fits now (MSG_DONTWAIT); when the rest does not, it waits
    for room with poll, for at most the time left. A reply that fits the socket's buffer,
    a warm call's, is still one system call. Past the deadline: TimeoutError."""
    view = memoryview(data)
    sent = 0
    poller: select.poll | None = None
    while True:
        try:
            sent += sock.send(view[sent:], socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        if sent >= len(view):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        if poller is None:
            poller = select.poll()
            poller.register(sock, select.POLLOUT)
        poller.poll(max(1, int(left * 1000)))


class SocketReader:
    """The part of a buffered reader that an HTTP parser needs (peek, read, readline) on a
    socket: a read past the socket's kernel deadline raises TimeoutError; b"" is the end."""

    __slots__ = ("sock", "buf", "deadline", "_armed_at")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.deadline: float | None = None
        self._armed_at = 0.0

    def until(self, deadline: float | None) -> None:
        """Every read from now on ends by `deadline` (time.monotonic()), however the peer
        trickles its bytes: SO_RCVTIMEO restarts at each recv, so a read after the first is
        re-armed with the time left. The caller has just set the kernel timeout to that time
        left (kernel_timeout), so the first read, the whole of a warm call's, costs nothing more."""
        self.deadline = deadline
        self._armed_at = time.monotonic()

    def _fill(self, want: int = CHUNK) -> bool:
        if self.deadline is not None:
            now = time.monotonic()
            if now - self._armed_at > REARM_SLACK_S:
                left = self.deadline - now
                if left <= 0:
                    raise TimeoutError("timed out")
                kernel_timeout(self.sock, left, send=False)
            self._armed_at = 0.0  # every later read re-arms
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
