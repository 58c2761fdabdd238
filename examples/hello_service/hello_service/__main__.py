"""python3 -m hello_service [--host HOST] [--port PORT]: serve the JSON API with the stdlib's HTTP server.

HOST defaults to $HOST, else 0.0.0.0 (every interface of the container, so a published port reaches it);
PORT to $PORT, else 8080. The server stops cleanly on SIGTERM (docker stop).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from hello_service.app import route


class Handler(BaseHTTPRequestHandler):
    server_version = "hello_service"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        status, body = route(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hello_service", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"hello_service: listening on {args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
