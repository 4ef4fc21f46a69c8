"""A recording HTTP proxy between a runner and the emulator, on loopback.

Every request is forwarded as it is; the proxy notes, per operation (the `X-Amz-Target`
header, or `S3.<method>`), when each request arrived, how long the emulator took to answer it,
and, for ReceiveMessage, when a response carrying messages
left towards the runner together with those messages' task tokens. `handoffs()` pairs each
token's ReceiveMessage response with the SendTaskSuccess/Failure request that answers it: the
time the runner held the job, which is what a runner adds on top of the emulator."""
import http.client
import http.server
import json
import socket
import threading
import time


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []  # (time, operation, "request" | "response", tokens)
        self.upstream = {}  # operation -> [seconds the emulator took to answer]
        # operation -> [seconds from the request read to its response sent: the emulator's time
        # and the proxy's own forwarding, what the client waited for less its own sending]
        self.through = {}

    def took(self, operation, seconds):
        with self.lock:
            self.upstream.setdefault(operation, []).append(seconds)

    def passed(self, operation, seconds):
        with self.lock:
            self.through.setdefault(operation, []).append(seconds)

    def note(self, operation, kind, tokens=()):
        with self.lock:
            self.events.append((time.monotonic(), operation, kind, tuple(tokens)))

    def first(self, operation):
        with self.lock:
            times = [t for t, op, kind, _ in self.events if op == operation and kind == "request"]
        return min(times) if times else None

    def requests_between(self, start, end):
        """Operation -> request count in [start, end]."""
        counts = {}
        with self.lock:
            for t, op, kind, _ in self.events:
                if kind == "request" and start <= t <= end:
                    counts[op] = counts.get(op, 0) + 1
        return counts

    def handoffs(self):
        """Seconds from each delivered token's ReceiveMessage response to its answer, and the
        requests the runner made in between (operation -> count) summed over all jobs."""
        with self.lock:
            events = list(self.events)
        given, answered = {}, {}
        for t, op, kind, tokens in events:
            for token in tokens:
                if kind == "response" and op.endswith("ReceiveMessage"):
                    given.setdefault(token, t)
                elif kind == "request" and (op.endswith("SendTaskSuccess") or op.endswith("SendTaskFailure")):
                    answered.setdefault(token, t)
        spans = [(given[k], answered[k]) for k in given if k in answered]
        between = {}
        for start, end in spans:
            for t, op, kind, _ in events:
                if kind == "request" and start < t < end:
                    between[op] = between.get(op, 0) + 1
        return [end - start for start, end in spans], between


def _tokens_in_receive(body):
    try:
        messages = json.loads(body).get("Messages", [])
    except ValueError:
        return []
    tokens = []
    for m in messages:
        try:
            inner = json.loads(m.get("Body", "{}"))
        except ValueError:
            continue
        token = inner.get("taskToken") or inner.get("deploymentPlanExecutionMetadata", {}).get("sfnToken")
        if token:
            tokens.append(token)
    return tokens


def _token_in_answer(body):
    try:
        return [json.loads(body).get("taskToken")]
    except ValueError:
        return []


def start(upstream_port, recorder):
    """Serves on a free loopback port; returns (server, port)."""
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            # Without this, a response's headers and body leave in two segments and the
            # client's delayed ACK adds 40 ms to every exchange.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            operation = self.headers.get("X-Amz-Target") or f"S3.{self.command}"
            answer = operation.endswith("SendTaskSuccess") or operation.endswith("SendTaskFailure")
            arrived = time.monotonic()
            recorder.note(operation, "request", _token_in_answer(body) if answer else ())
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            try:
                sent = time.monotonic()
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                recorder.took(operation, time.monotonic() - sent)
            except (http.client.HTTPException, OSError):
                local.conn = None
                self.send_error(502)
                return
            self.send_response(response.status)
            for k, v in response.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            try:
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the runner was stopped during its long poll
            recorder.passed(operation, time.monotonic() - arrived)
            if operation.endswith("ReceiveMessage"):
                tokens = _tokens_in_receive(data)
                if tokens:
                    recorder.note(operation, "response", tokens)

        do_POST = do_GET = do_PUT = do_DELETE = do_HEAD = _forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
