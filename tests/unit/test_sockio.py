"""sockio: the reader and the kernel deadlines of the warm path, over socketpair()."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

import pytest

from faas.invoke.sockio import CHUNK, SocketReader, kernel_timeout


def _timeouts(sock: socket.socket) -> tuple[float, float]:
    size = struct.calcsize("ll")
    rcv = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, size))
    snd = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, size))
    return rcv[0] + rcv[1] / 1e6, snd[0] + snd[1] / 1e6


@pytest.mark.parametrize(
    "seconds,send,rcv,snd",
    [
        (2.5, True, 2.5, 2.5),
        (2.5, False, 2.5, 0.0),
        (None, True, 0.0, 0.0),  # 0 is the kernel's "no deadline"
        (0.0, True, 0.001, 0.001),  # so a spent deadline is a millisecond, never none
        (-1.0, True, 0.001, 0.001),
    ],
)
def test_kernel_timeout_sets_the_kernel_deadlines(pair, seconds, send, rcv, snd) -> None:
    a, _ = pair
    a.settimeout(5)  # a Python timeout would poll before each call: it is switched off
    kernel_timeout(a, seconds, send=send)
    assert a.gettimeout() is None
    got_rcv, got_snd = _timeouts(a)
    # the kernel keeps whole clock ticks (up to 10 ms), never rounding a deadline down to none
    assert (got_rcv > 0) == (rcv > 0) and rcv <= got_rcv <= rcv + 0.01
    assert (got_snd > 0) == (snd > 0) and snd <= got_snd <= snd + 0.01


def test_a_read_past_the_kernel_deadline_raises_timeout(pair) -> None:
    a, _ = pair
    kernel_timeout(a, 0.05)
    reader = SocketReader(a)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        reader.read(1)
    assert 0.03 < time.monotonic() - started < 2.0
    with pytest.raises(TimeoutError):
        reader.peek()
    with pytest.raises(TimeoutError):
        reader.readline()


@pytest.mark.parametrize(
    "sent,calls,expected",
    [
        # (what the peer sends then closes, reader calls, what each returns)
        (b"hello world", [("peek", 1), ("read", 5), ("read", 100)], [b"hello world", b"hello", b" world"]),
        (b"", [("peek", 1), ("read", 3), ("readline", 10)], [b"", b"", b""]),
        (
            b"a\nbc\ndef",
            [("readline", 100), ("readline", 100), ("readline", 100), ("readline", 100)],
            [b"a\n", b"bc\n", b"def", b""],
        ),
        (b"abcdef\n", [("readline", 4), ("readline", 100)], [b"abcd", b"ef\n"]),
        (b"x\r\n\r\nrest", [("readline", 100), ("readline", 100), ("read", 4)], [b"x\r\n", b"\r\n", b"rest"]),
    ],
)
def test_reader_calls(pair, sent, calls, expected) -> None:
    a, b = pair
    b.sendall(sent)
    b.shutdown(socket.SHUT_WR)
    reader = SocketReader(a)
    assert [getattr(reader, name)(n) for name, n in calls] == expected


def test_peek_does_not_consume_and_reads_at_most_once(pair) -> None:
    a, b = pair
    b.sendall(b"first")
    reader = SocketReader(a)
    assert reader.peek() == b"first"
    b.sendall(b"second")
    assert select.select([a], [], [], 5)[0] == [a]  # "second" is there to be read
    assert reader.peek() == b"first"  # something is buffered: no read
    assert reader.read(5) == b"first"
    assert reader.peek() == b"second"


def test_reads_larger_than_a_chunk_gather_every_piece(pair) -> None:
    a, b = pair
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    sender = threading.Thread(target=lambda: (b.sendall(data), b.shutdown(socket.SHUT_WR)))
    sender.start()
    reader = SocketReader(a)
    assert reader.read(len(data) - 10) == data[:-10]
    assert reader.read(100) == data[-10:]
    sender.join(5)


def test_a_line_split_across_reads_is_whole(pair) -> None:
    a, b = pair
    b.sendall(b"GET /x HT")
    threading.Timer(0.05, b.sendall, [b"TP/1.1\r\nnext"]).start()
    reader = SocketReader(a)
    assert reader.readline(100) == b"GET /x HTTP/1.1\r\n"
    assert reader.read(4) == b"next"


def test_close_leaves_the_socket_to_its_owner(pair) -> None:
    a, b = pair
    SocketReader(a).close()
    b.sendall(b"x")
    assert a.recv(1) == b"x"
