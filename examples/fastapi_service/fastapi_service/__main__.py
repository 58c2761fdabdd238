"""python3 -m fastapi_service [--host HOST] [--port PORT]: serve the API with uvicorn.

HOST defaults to $HOST, else 0.0.0.0 (every interface of the container, so a published port reaches it);
PORT to $PORT, else 8080. uvicorn stops cleanly on SIGTERM (docker stop).
"""

from __future__ import annotations

import argparse
import os

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(prog="fastapi_service", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    uvicorn.run("fastapi_service.app:app", host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
