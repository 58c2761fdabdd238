"""Downloads one URL with Python's TLS stack, which trusts the machine's CA bundle; checks a sha256 when given.

The wheel repositories download with Bazel's own downloader first. Its Java TLS stack trusts only the
Java keystore of the build root, so behind a TLS-intercepting proxy whose CA only the machine's bundle
holds, it cannot connect; the repository rule then falls back to this, and hands the verified file to
Bazel's downloader again (as a file:// URL with the same sha256), so it still lands in the repository cache.
PIP_CERT, when set, names the CA bundle, as it does for pip.

    python3 -m tools.python.fetch URL OUTPUT [--sha256 HEX]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from tools import cli

TIMEOUT = 120


class FetchError(Exception):
    pass


def ssl_context(environ: dict[str, str]) -> ssl.SSLContext:
    cafile = environ.get("PIP_CERT") or None
    return ssl.create_default_context(cafile=cafile)


def check_sha256(data: bytes, expected: str, url: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise FetchError(f"{url}: its sha256 is {actual}, but the lock says {expected}: the lock or the index is wrong")


def fetch(url: str, context: ssl.SSLContext) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:
            return bytes(response.read())
    except (urllib.error.URLError, OSError) as error:
        raise FetchError(f"{url}: {error}") from error


@cli.tool("fetch", FetchError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("output", type=Path)
    parser.add_argument("--sha256", default="")
    args = parser.parse_args(argv)
    data = fetch(args.url, ssl_context(dict(os.environ)))
    if args.sha256:
        check_sha256(data, args.sha256, args.url)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
