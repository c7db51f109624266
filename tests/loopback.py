"""A loopback (127.0.0.1 only) HTTP server that serves a directory like the SAS, with faults."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class SAS:
    """Serves ``root`` under ``/dr{release}/eboss/photoObj/frames/``. ``faults[name]`` is a list of
    faults served (one per request) before the file is served normally: 'truncate' (Content-Length
    of the whole file, half the bytes), 'corrupt' (right length, garbage bytes), '503', '404',
    ('stall', seconds) (sleeps before answering), 'redirect' (302 to an ftp:// URL), 'encoded'
    (the file with a 'Content-Encoding: x-bzip2' header). ``delay`` seconds pass before every
    answer (a slow archive)."""

    def __init__(self, root, release=16):
        self.root, self.prefix = Path(root), f"/dr{release}/eboss/photoObj/frames/"
        self.faults = defaultdict(list)
        self.requests = Counter()
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rel = self.path[len(server.prefix):] if self.path.startswith(server.prefix) else None
                path = server.root / rel if rel else None
                name = Path(self.path).name
                server.requests[name] += 1
                fault = server.faults[name].pop(0) if server.faults[name] else None
                if server.delay:
                    time.sleep(server.delay)
                if fault == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "ftp://127.0.0.1/" + name)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if isinstance(fault, tuple) and fault[0] == "stall":
                    time.sleep(fault[1])
                    fault = None
                if fault == "503":
                    self.send_error(503)
                    return
                if path is None or not path.exists() or fault == "404":
                    self.send_error(404)
                    return
                data = path.read_bytes()
                body = data[: len(data) // 2] if fault == "truncate" else data
                if fault == "corrupt":
                    body = bytes(len(data))
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                if fault == "encoded":
                    self.send_header("Content-Encoding", "x-bzip2")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if fault == "truncate":
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
