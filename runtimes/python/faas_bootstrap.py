"""The faas Python runtime: a Lambda Runtime API client that runs inside the container.

Standard library only, and no more of it than needed before the first event: this is the
cold-start path. It speaks HTTP/1.1 (keep-alive, Content-Length bodies) over the unix
socket the platform mounts at /run/faas/runtime.sock:

1. GET /faas/v1/environment  -> {"handler": "app.handler", "env": {...}}; blocks until the
   platform gives this (possibly pre-started) container a function.
2. import the handler once; on failure POST /2018-06-01/runtime/init/error and exit 1.
3. loop: GET .../invocation/next, call handler(event, context), POST .../response or .../error.

Error types, messages, log lines and the context object follow AWS's Python runtime
interface client, so what a function sees and prints here is what it sees on Lambda.
"""

import json
import os
import sys
import time

import _socket

RUNTIME_API = "/2018-06-01/runtime"
ENVIRONMENT_PATH = "/faas/v1/environment"
DEFAULT_SOCKET = "/run/faas/runtime.sock"
CONNECT_WAIT_S = 5.0  # the platform creates the socket before starting the container

MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

ERROR_LOG_IDENT = "\u00a0"  # Lambda's runtime indents traceback lines with NO-BREAK SPACE

_request_id = None  # the request being handled, for the log formatter


class Fault(Exception):
    """A runtime-level failure with one of Lambda's Runtime.* error types."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


class RuntimeAPIError(Exception):
    """The Runtime API connection failed; the container cannot go on."""


# --- HTTP/1.1 over the unix socket ------------------------------------------------------


class RuntimeClient:
    """A minimal keep-alive HTTP/1.1 client on one unix socket connection."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""

    def _connect(self):
        deadline = time.monotonic() + CONNECT_WAIT_S
        while True:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError) as e:
                sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeAPIError("cannot connect to the Runtime API at %s: %s" % (self.path, e)) from e
                time.sleep(0.005)
                continue
            self.sock = sock
            self.buf = b""
            return

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, method, path, body=b"", headers=None):
        """Send one request, return (status, headers with lower-case names, body bytes)."""
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)
        if headers:
            for name, value in headers.items():
                head += "%s: %s\r\n" % (name, value)
        if method != "GET":
            head += "Content-Length: %d\r\n" % len(body)
        data = head.encode("latin-1") + b"\r\n" + body
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self._connect()
            try:
                self.sock.sendall(data)
                return self._response()
            except (ConnectionError, RuntimeAPIError) as e:
                # The platform may have closed an idle kept-alive connection: one retry.
                self.close()
                if attempt or not reused:
                    raise RuntimeAPIError("Runtime API %s %s failed: %s" % (method, path, e)) from e
        raise AssertionError("unreachable")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeAPIError("the Runtime API closed the connection")
        self.buf += chunk

    def _read_exact(self, n):
        have = len(self.buf)
        if have >= n:
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        out = bytearray(n)
        out[:have] = self.buf
        self.buf = b""
        view = memoryview(out)
        while have < n:
            got = self.sock.recv_into(view[have:], n - have)
            if not got:
                raise RuntimeAPIError("the Runtime API closed the connection mid-body")
            have += got
        return bytes(out)

    def _readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _response(self):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4:]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status < 200 or status in (204, 304):
            return self._response() if status < 200 else (status, headers, b"")
        if "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self._readline().split(b";", 1)[0], 16)
                if size == 0:
                    while self._readline():  # trailers
                        pass
                    break
                chunks.append(self._read_exact(size))
                self._readline()
            body = b"".join(chunks)
        else:  # body until the server closes
            chunks = [self.buf]
            self.buf = b""
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            body = b"".join(chunks)
            self.close()
            return status, headers, body
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


# --- the context object, as Lambda's Python runtime builds it ----------------------------


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id, self.cognito_identity_pool_id)


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (k, getattr(self, k)) for k in self.__slots__)


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _obj_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name))
    return obj


class LambdaContext:
    def __init__(self, request_id, client_context, cognito_identity, deadline_ms, invoked_function_arn=None):
        env = os.environ
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
        if isinstance(client_context, dict):
            client_context.pop("w3c", None)
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            client = self.client_context.client
            self.client_context.client = _obj_from_dict(Client, client) if isinstance(client, dict) else client
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (self.aws_request_id, self.log_group_name, self.log_stream_name, self.function_name,
               self.memory_limit_in_mb, self.function_version, self.invoked_function_arn,
               self.client_context, self.identity, self.tenant_id)
        )


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise Fault(CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (name, e))


# --- loading the handler -----------------------------------------------------------------


def load_handler(handler):
    """Import module.function as Lambda does; raises Fault with Lambda's type and message."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise Fault(MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (handler, e))
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault(BUILT_IN_MODULE_CONFLICT, "Cannot use built-in module %s as a handler module" % modname)
    import importlib

    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise Fault(IMPORT_MODULE_ERROR, "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise Fault(USER_CODE_SYNTAX_ERROR, "Syntax error in module '%s': %s" % (modname, e), trace)
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault(HANDLER_NOT_FOUND, "Handler '%s' missing on module '%s'" % (fname, modname))


# --- errors and their log lines ----------------------------------------------------------


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def error_from_exception(exc, request_id=None):
    """The error body of an exception raised by user code; this file's frames left out."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    for i, frame in enumerate(frames):
        if frame.filename != __file__:
            frames = frames[i:]
            break
    return make_error(str(exc), type(exc).__name__, traceback.format_list(frames), request_id)


def _indent(line):
    n = len(line) - len(line.lstrip(" "))
    return ERROR_LOG_IDENT * n + line[n:]


def log_error(error):
    """Print Lambda's "[ERROR] Type: message" line and its traceback to the function's log."""
    line = "[ERROR]"
    if error.get("errorType"):
        line += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            line += ":"
        line += " " + error["errorMessage"]
    lines = [line]
    stack = error.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
            else:
                lines.extend(_indent(part) for part in element.splitlines())
    sys.stdout.write("\n".join(lines) + "\n")


# --- marshalling -------------------------------------------------------------------------


def _json_default(obj):
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def marshal(result):
    """(body bytes, content type) of a handler's return value."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return json.dumps(result, default=_json_default).encode("utf-8"), "application/json"
    except Exception as e:
        raise Fault(MARSHAL_ERROR, "Unable to marshal response: %s" % e)


def unmarshal(body, content_type):
    if content_type and content_type != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise Fault(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)


# --- logging, as Lambda's runtime sets it up ---------------------------------------------


def setup_logging():
    """Lambda's log handler on the root logger (set up before the function is known: the
    import of logging is then paid while a pre-started container waits)."""
    import logging

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                sys.stdout.write(self.format(record))
            except Exception:
                self.handleError(record)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _request_id or ""
            record.tenant_id = None
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(LambdaLoggerFilter())
    logging.getLogger().addHandler(handler)


def apply_log_level():
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    if level:
        import logging

        if level in logging._nameToLevel:
            logging.getLogger().setLevel(level)


# --- the main loop -----------------------------------------------------------------------


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _post(client, path, body, headers=None):
    hdrs = {"Content-Type": "application/json"}
    if headers:
        hdrs.update(headers)
    status, _, answer = client.request("POST", path, body, hdrs)
    # 202 is the normal answer; a 4xx (e.g. 413 response too large) ends this request only.
    return status, answer


def init(client):
    """Fetch this environment's function and apply it; returns the handler name."""
    setup_logging()
    import importlib  # noqa: F401  (used by load_handler; paid before the function is known)

    status, _, body = client.request("GET", ENVIRONMENT_PATH)
    if status != 200:
        raise RuntimeAPIError("GET %s answered %d: %s" % (ENVIRONMENT_PATH, status, body[:200].decode("utf-8", "replace")))
    info = json.loads(body)
    env = {str(k): str(v) for k, v in (info.get("env") or {}).items()}
    os.environ.update(env)
    handler = info.get("handler") or os.environ.get("_HANDLER") or ""
    os.environ.setdefault("_HANDLER", handler)
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"
    try:
        os.chdir(task_root)
    except OSError:
        pass
    extra = [p for p in env.get("PYTHONPATH", "").split(":") if p]
    # As on Lambda: the task, then the layers' python/lib/pythonX.Y/site-packages and python/
    # under /opt, before the runtime's own packages (a layer's boto3 wins over the image's).
    site = "/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2]
    sys.path[0:0] = [task_root] + extra + [site, "/opt/python"]
    if "TZ" in env:
        time.tzset()
    apply_log_level()
    debug = info.get("debug")
    if debug:  # `faas invoke --debug`: debugpy listens before the function's module is imported
        import faas_debug

        faas_debug.start(debug)
    return handler


AWS_RELAY_PORT = 9002  # AWS_ENDPOINT_URL_LAMBDA's port on this container's own loopback


def start_aws_relay(path, port=AWS_RELAY_PORT):
    """Forward 127.0.0.1:port (this container's own loopback, so `network: none` too) to the
    platform's Lambda API socket, in threads of this process: boto3 calls other functions here.
    _socket and _thread only, so that a cold start imports nothing more for it."""
    import _thread

    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
    except OSError as e:
        listener.close()
        sys.stderr.write("faas runtime: the Lambda API forwarder cannot listen on 127.0.0.1:%d: %s\n" % (port, e))
        return

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def serve(conn):
        up = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            up.connect(path)
        except OSError:
            conn.close()
            up.close()
            return
        done = _thread.allocate_lock()
        done.acquire()

        def upward():
            try:
                pump(conn, up)
            finally:
                done.release()

        _thread.start_new_thread(upward, ())
        pump(up, conn)
        try:  # the platform's side ends after one answer: end the other direction too
            conn.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        done.acquire()
        conn.close()
        up.close()

    def accept_loop():
        while True:
            try:
                fd, _ = listener._accept()
            except OSError:
                return
            _thread.start_new_thread(serve, (_socket.socket(fileno=fd),))

    _thread.start_new_thread(accept_loop, ())


def main():
    aws_socket = os.environ.pop("FAAS_AWS_SOCKET", None)
    if aws_socket:
        start_aws_relay(aws_socket)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    client = RuntimeClient(os.environ.get("FAAS_RUNTIME_SOCKET") or DEFAULT_SOCKET)
    try:
        handler_name = init(client)
        try:
            handler = load_handler(handler_name)
        except Fault as e:
            error = make_error(e.message, e.error_type, e.trace)
        except Exception as e:
            error = error_from_exception(e)
        else:
            error = None
        if error is not None:
            log_error(error)
            _flush()
            _post(client, RUNTIME_API + "/init/error", json.dumps(error).encode("utf-8"),
                  {"Lambda-Runtime-Function-Error-Type": error["errorType"]})
            _flush()
            sys.exit(1)
        serve(client, handler)
    except RuntimeAPIError as e:
        sys.stderr.write("faas runtime: %s\n" % e)
        _flush()
        sys.exit(1)


# Faas-Direct: 2 also says that this client keeps what it reads past a response (self.buf),
# so the platform may send the answer to a result together with the next event.
DIRECT = {"Faas-Direct": "2"}


def serve(client, handler):
    global _request_id
    environ = os.environ
    next_path = RUNTIME_API + "/invocation/next"
    while True:
        # Faas-Direct: this client uses its one connection strictly in turn, so the platform
        # may drive it from the calling thread (no thread hand-offs on a warm call).
        status, headers, body = client.request("GET", next_path, headers=DIRECT)
        if status != 200:
            raise RuntimeAPIError("GET %s answered %d" % (next_path, status))
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        _request_id = request_id
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            environ.pop("_X_AMZN_TRACE_ID", None)
        error = None
        try:
            client_context = headers.get("lambda-runtime-client-context")
            identity = headers.get("lambda-runtime-cognito-identity")
            context = LambdaContext(
                request_id,
                _parse_json_header(client_context, "Client Context") if client_context else None,
                _parse_json_header(identity, "Cognito Identity") if identity else None,
                int(headers.get("lambda-runtime-deadline-ms") or 0),
                headers.get("lambda-runtime-invoked-function-arn"),
            )
            event = unmarshal(body, headers.get("content-type"))
            result, content_type = marshal(handler(event, context))
        except Fault as e:
            error = make_error(e.message, e.error_type, e.trace, request_id)
        except Exception as e:
            error = error_from_exception(e, request_id)
        base = RUNTIME_API + "/invocation/" + request_id
        if error is not None:
            log_error(error)
            _flush()
            _post(client, base + "/error", json.dumps(error).encode("utf-8"),
                  {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        else:
            _flush()
            _post(client, base + "/response", result, {"Content-Type": content_type})
