"""Capturing a function's output: each environment's FIFO, drained under a lock, kept awake by one pump.

A container's stdout and stderr go to a FIFO in its environment folder rather than through
the engine's log driver: the bytes a handler printed before it posted its result are in the
FIFO before the result reaches us, so one non-blocking drain after the result gives exactly
that call's output, with no engine round trip and nothing written to disk by the engine
(a function that prints 300 MB costs CPU, not disk).
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import threading
import time
from pathlib import Path

from faas.private import for_sandbox

LOG = logging.getLogger(__name__)

CALL_LOG_CAP = 256 * 1024  # bytes of one call's output kept; the rest is counted and dropped
PUMP_DELAY_S = 0.01  # how long the pump lets a quiet function's pipe fill before reading it
CHATTY_BYTES = 16384  # a round that read this much: the pump reads again without waiting
TRUNCATED = "[faas] log output truncated: {} bytes dropped\n"


class LogSink:
    """One environment's FIFO: reads under a lock so that the pump and a finishing call never interleave."""

    def __init__(self, fifo: Path) -> None:
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)
        for_sandbox(fifo)  # the sandbox user writes it
        # O_RDWR: the FIFO never reports end-of-file while no container holds it open.
        self.fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._dropped = 0
        self.closed = False

    def pull(self) -> int:
        """Read everything available now; returns how many bytes that was."""
        with self._lock:
            return self._pull_locked()

    def _pull_locked(self) -> int:
        got = 0
        while not self.closed:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # BlockingIOError: nothing more now
                return got
            if not chunk:
                return got
            got += len(chunk)
            room = CALL_LOG_CAP - len(self._buf)
            if room >= len(chunk):
                self._buf += chunk
            else:
                if room > 0:
                    self._buf += chunk[:room]
                self._dropped += len(chunk) - max(room, 0)
        return got

    def take(self) -> str:
        """Drain, then return and reset what was captured since the last take()."""
        with self._lock:
            self._pull_locked()
            text = self._buf.decode("utf-8", "replace")
            if self._dropped:
                if text and not text.endswith("\n"):
                    text += "\n"
                text += TRUNCATED.format(self._dropped)
            self._buf = bytearray()
            self._dropped = 0
        return text

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                os.close(self.fd)


class LogPump:
    """One thread keeps every FIFO drained, so a chatty function never blocks on a full pipe.

    A call's own output is read by the call itself when it ends (LogSink.take), so the pump
    only has to keep pipes from filling. Woken by every line a function printed, it cost
    a thread wake-up and a GIL hand-over per call; now, unless its last round read a lot
    (a chatty function: then it keeps going at once), it waits PUMP_DELAY_S after a wake-up
    before it reads, and most of the time finds the pipe already emptied by the call.
    """

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._ops: queue.SimpleQueue[tuple[str, LogSink]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="log-pump", daemon=True)
        self._thread.start()

    def add(self, sink: LogSink) -> None:
        self._ops.put(("add", sink))
        self._wake()

    def remove(self, sink: LogSink) -> None:
        """Unregister, then close the sink from the pump's own thread (no fd is closed under select)."""
        self._ops.put(("remove", sink))
        self._wake()

    def close(self) -> None:
        self._stop = True
        self._wake()
        self._thread.join(timeout=2)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _run(self) -> None:
        delay = 0.0
        while not self._stop:
            ready = self._sel.select()
            if delay and not self._stop:
                time.sleep(delay)
            chatty = False
            for key, _ in ready:
                sink = key.data
                if sink is None:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self._apply_ops()
                elif sink.pull() >= CHATTY_BYTES:
                    chatty = True
            delay = 0.0 if chatty else PUMP_DELAY_S
        for key in list(self._sel.get_map().values()):
            if key.data is not None:
                key.data.close()
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _apply_ops(self) -> None:
        while True:
            try:
                op, sink = self._ops.get_nowait()
            except queue.Empty:
                return
            if op == "add" and not sink.closed:
                self._sel.register(sink.fd, selectors.EVENT_READ, sink)
            elif op == "remove":
                try:
                    self._sel.unregister(sink.fd)
                except (KeyError, ValueError, OSError):
                    pass
                sink.close()
