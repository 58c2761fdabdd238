"""A signed throwaway Debian archive for tests, served on 127.0.0.1 only.

Shared by //tools/debian:test_snapshot_fallback and //tools/release:release_e2e_test: a throwaway gpg key
(Signer), suites written as a Packages.xz index and an InRelease signed with it (write_suite), Packages stanzas
from a .deb's own control data (deb_stanza), and an HTTP server on loopback (Server).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import lzma
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest


def fail_without(tool: str, why: str) -> str:
    """The tool's path; fails the test (never skips it) when the tool is missing."""
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not on PATH but is needed to {why}; this test runs in the build root, which has it "
                    "(tools/build_root.packages)")
    return path


# ---------------------------------------------------------------------------------------------- signing


def gpg(home: Path) -> list[str]:
    return ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]


@dataclass(frozen=True)
class Signer:
    home: Path
    keyring: Path  # the public key alone, as a keyring for gpgv (the lock tool's --keyring)

    def clearsign(self, text: str) -> bytes:
        return subprocess.run([*gpg(self.home), "--clearsign"], input=text.encode(), check=True,
                              capture_output=True).stdout

    def stop(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def make_signer(prefix: str = "gpg-fixture-") -> Signer:
    """A new ed25519 signing key in a throwaway home; stop() kills its agent and deletes it."""
    # gpg-agent's socket lives in the home directory, whose path must stay short: not under TEST_TMPDIR.
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    user = "fixture-archive@example.invalid"
    subprocess.run([*gpg(home), "--quick-gen-key", f"Fixture Archive <{user}>", "ed25519", "sign", "never"],
                   check=True, capture_output=True)
    keyring = home / "keyring.gpg"
    keyring.write_bytes(subprocess.run([*gpg(home), "--export", user], check=True, capture_output=True).stdout)
    return Signer(home, keyring)


# ---------------------------------------------------------------------------------------------- the archive


def deb_stanza(deb: Path, filename: str) -> str:
    """A Packages stanza for a real .deb: its control fields as dpkg-deb reads them, then where and what it is."""
    control = subprocess.run(["dpkg-deb", "--field", str(deb)], check=True, capture_output=True,
                             text=True).stdout.rstrip("\n")
    data = deb.read_bytes()
    return (f"{control}\nFilename: {filename}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n")


def write_suite(archive: Path, suite: str, arch: str, stanzas: list[str], date: str, signer: Signer,
                origin: str = "Fixture") -> None:
    """dists/<suite>/ of `archive`: main's Packages.xz holding `stanzas` and an InRelease signed by `signer`.

    `date` is the Release's Date field (RFC 2822). The .debs the stanzas name are the caller's to put in pool/.
    """
    suite_dir = archive / "dists" / suite
    shutil.rmtree(suite_dir, ignore_errors=True)
    index = lzma.compress("\n".join(stanzas).encode())
    binary = suite_dir / "main" / f"binary-{arch}"
    binary.mkdir(parents=True)
    (binary / "Packages.xz").write_bytes(index)
    release = (f"Origin: {origin}\nSuite: {suite}\nCodename: {suite}\nDate: {date}\n"
               f"Architectures: {arch}\nComponents: main\nSHA256:\n"
               f" {hashlib.sha256(index).hexdigest()} {len(index)} main/binary-{arch}/Packages.xz\n")
    (suite_dir / "InRelease").write_bytes(signer.clearsign(release))


# ---------------------------------------------------------------------------------------------- serving


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    """Serves a directory over HTTP on loopback only, until stop()."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]
