"""Debugging inside the container: debugpy, reached from the host through /run/faas/debug.sock.

The bootstrap calls start() before it imports the function's module, when the platform's
first message asks for a debugger ({"debug": {...}}). debugpy then listens on 127.0.0.1 in
the container's own network namespace (which has a loopback interface even with
`network: none`). A relay thread dials the platform's socket in the runtime folder, and
when an IDE's first bytes arrive it connects to debugpy and copies both ways. After a
session it dials again, so an IDE can detach and attach again.
Standard library only, besides debugpy itself (Debian's python3-debugpy in the image).
"""

import os
import socket
import sys
import threading
import time

DEFAULT_SOCKET = "/run/faas/debug.sock"
_CHUNK = 65536
_RETRY_S = 0.2


def start(options=None):
    """Listen with debugpy, start the relay, and (unless told not to) wait for an IDE to attach."""
    options = options or {}
    try:
        import debugpy
    except ImportError:
        sys.stderr.write("faas debug: debugpy is not installed in this runtime image; running without a debugger\n")
        return None
    endpoint = debugpy.listen(("127.0.0.1", 0))
    port = endpoint[1] if isinstance(endpoint, tuple) else int(endpoint)
    path = options.get("socket") or DEFAULT_SOCKET
    threading.Thread(target=_relay_forever, args=(path, port), name="faas-debug-relay", daemon=True).start()
    sys.stderr.write("faas debug: waiting for a debugger to attach\n")
    sys.stderr.flush()
    if options.get("wait", True):
        debugpy.wait_for_client()
        sys.stderr.write("faas debug: debugger attached\n")
        sys.stderr.flush()
    return port


def _relay_forever(path, port):
    while True:
        outer = _dial(path)
        try:
            first = outer.recv(_CHUNK)  # an IDE connected on the host and spoke
            if not first:
                continue
            inner = socket.create_connection(("127.0.0.1", port))
        except OSError:
            _close(outer)
            time.sleep(_RETRY_S)
            continue
        try:
            inner.sendall(first)
            _pump(outer, inner)
        except OSError:
            pass
        finally:
            _close(outer)
            _close(inner)


def _dial(path):
    """A connection to the platform's debug socket, retrying while it is not there yet."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(_RETRY_S)


def _pump(a, b):
    """Copy both ways; when either side ends, end the other too."""
    ended = threading.Event()

    def copy(src, dst):
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            ended.set()

    threads = [threading.Thread(target=copy, args=pair, daemon=True) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    ended.wait()
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for t in threads:
        t.join()


def _close(s):
    try:
        s.close()
    except OSError:
        pass


if __name__ == "__main__":  # `python3 faas_debug.py SCRIPT`: debug any script the same way
    start({"socket": os.environ.get("FAAS_DEBUG_SOCKET", DEFAULT_SOCKET)})
    import runpy

    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
