"""The local endpoint's floor: a plain `http.server` that echoes the POST body, HTTP/1.1
keep-alive, one thread per connection — the same stdlib machinery the local target's front uses,
without any Lambda emulation. Prints `{"port": N}` once listening; runs until killed."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops SYNs when 32 clients connect at once
    daemon_threads = True


def main():
    server = Server(("127.0.0.1", 0), Echo)
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
