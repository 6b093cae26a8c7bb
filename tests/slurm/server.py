#!/usr/bin/env python3
"""Loopback HTTP/1.1 server for the Slurm CI step (.ci/slurm.sh).

Answers every GET/HEAD path with 200 and a short body after DELAY seconds, so a
probe of a long list takes long enough for a task to be killed mid-run. Keep-alive
on (HTTP/1.1 with Content-Length). Binds 127.0.0.1 on an ephemeral port and writes
that port to PORT_FILE once it listens (the caller waits for the file).

usage: server.py PORT_FILE DELAY_SECONDS
"""
import http.server
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out in two writes; without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms), which would dwarf DELAY.
    disable_nagle_algorithm = True
    delay = 0.0

    def do_GET(self):
        time.sleep(self.delay)
        body = b"ok " + self.path.encode("utf-8", "replace") + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: every task connects at once

    def handle_error(self, request, client_address):
        # A client killed mid-request (the step scancels a task) is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    port_file, delay = sys.argv[1], float(sys.argv[2])
    Handler.delay = delay
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, port_file)  # whole or absent: the reader never sees half a number
    srv.serve_forever()


if __name__ == "__main__":
    main()
