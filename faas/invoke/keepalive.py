"""How long an idle environment is kept: the configured keep-alive, or longer for a function
whose calls are known to come back after longer than that.

After "Serverless in the Wild" (Shahrad et al., ATC'20): keep-alive is a bet on when the next
call comes, and each function's own idle times are the best guide. Their policy keeps a
histogram of each application's idle times and keeps it warm up to the 99th percentile,
falling back to a fixed window while the histogram is not yet representative. The buckets
here double in width, so the window is the percentile rounded up to a power of two: a
margin of up to 2x, which errs on the side of a warm call.
Here the fixed window (FAAS_KEEP_ALIVE, 10 minutes) is also the floor: on one machine
there is no bill for idle memory, and the memory budget already evicts idle environments
when something else needs the room, so a shorter window would only add cold starts. What
learning adds is the other side: a function called every 15 minutes (a cron-like job, a
developer's edit-and-test loop with breaks) stays warm instead of starting cold every time.
"""

from __future__ import annotations

import math
import threading

MIN_SAMPLES = 5  # idle periods seen before they are trusted over the fixed window
HALVE_AT = 200  # counts are halved past this many: recent behaviour weighs most
PERCENTILE = 0.99
LOWEST = -3  # the first bucket holds idle periods up to 2**-3 s
CEILING_S = 2.0**14  # ~4.5 h: calls that come back later than this are no pattern worth memory
_BUCKETS = int(math.log2(CEILING_S)) - LOWEST + 2  # ..., up to CEILING_S, then one for "longer"


class IdleTimes:
    """Per function: when it went idle, and a histogram of how long its idle periods lasted
    (log2 buckets, so recording one costs a few microseconds on the call's path)."""

    def __init__(self, default_s: float) -> None:
        self.default_s = default_s
        self._lock = threading.Lock()
        self._idle_since: dict[str, float] = {}
        self._counts: dict[str, list[int]] = {}

    def went_idle(self, name: str, now: float) -> None:
        """The function's last call in flight ended."""
        self._idle_since[name] = now

    def called(self, name: str, now: float) -> None:
        """A call arrived: if the function was idle, that idle period is over."""
        since = self._idle_since.pop(name, None)
        if since is None:
            return
        _, exponent = math.frexp(max(now - since, 1e-9))  # gap <= 2**exponent
        index = min(max(exponent - LOWEST, 0), _BUCKETS - 1)
        with self._lock:
            counts = self._counts.get(name)
            if counts is None:
                counts = self._counts[name] = [0] * _BUCKETS
            counts[index] += 1
            if sum(counts) > HALVE_AT:
                counts[:] = [c // 2 for c in counts]

    def keep_alive_s(self, name: str) -> float:
        """The configured window, or the bucket that holds the 99th percentile of the function's
        idle periods when that is longer and not past the ceiling."""
        with self._lock:
            counts = list(self._counts.get(name) or ())
        total = sum(counts)
        if total < MIN_SAMPLES:
            return self.default_s
        needed = math.ceil(PERCENTILE * total)
        seen = 0
        for index, count in enumerate(counts):  # noqa: B007 (index is read after the loop)
            seen += count
            if seen >= needed:
                break
        if index == _BUCKETS - 1:  # longer than the ceiling: no pattern to hold memory for
            return self.default_s
        return max(self.default_s, 2.0 ** (index + LOWEST))

    def forget(self, name: str) -> None:
        """The function was removed."""
        with self._lock:
            self._idle_since.pop(name, None)
            self._counts.pop(name, None)
