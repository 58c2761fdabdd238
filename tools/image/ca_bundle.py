"""Writes the CA bundle that the ca-certificates package's postinst would generate.

Distroless images never run maintainer scripts, so /etc/ssl/certs/ca-certificates.crt is built here from
every certificate the package ships, which is what its postinst selects by default (it writes
/etc/ca-certificates.conf itself, so the package carries no selection). OpenSSL's default paths
(/usr/lib/ssl/cert.pem and /usr/lib/ssl/certs on Debian) are linked to it, so Python's ssl module finds the
bundle without SSL_CERT_FILE.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from tools import cli, tarball

CERTIFICATES = "usr/share/ca-certificates"
BUNDLE = "etc/ssl/certs/ca-certificates.crt"
OPENSSL_DEFAULTS = {"usr/lib/ssl/cert.pem": "/" + BUNDLE, "usr/lib/ssl/certs": "/etc/ssl/certs"}


class CaBundleError(Exception):
    """Input that cannot give a bundle; the message says what to fix."""


def bundle(layer: tarball.Layer) -> bytes:
    """The certificates under /usr/share/ca-certificates, concatenated in path order."""
    certificates = [entry for path, entry in sorted(layer.entries.items())
                    if path.startswith(CERTIFICATES + "/") and path.endswith(".crt") and entry.type == tarfile.REGTYPE]
    if not certificates:
        raise CaBundleError(f"no certificates under /{CERTIFICATES} in the layers; add the ca-certificates package")
    return b"".join(entry.data if entry.data.endswith(b"\n") else entry.data + b"\n" for entry in certificates)


def bundle_layer(layers: list[Path]) -> tarball.Layer:
    merged = tarball.Layer()
    for path in layers:
        merged.merge(tarball.read_layer(path))
    out = tarball.Layer()
    out.add_file(BUNDLE, bundle(merged))
    for link, target in OPENSSL_DEFAULTS.items():
        out.add_symlink(link, target)
    return out


@cli.tool("ca_bundle", CaBundleError)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=Path, action="append", required=True, help="layer holding ca-certificates")
    parser.add_argument("--output", type=Path, required=True, help="layer to write")
    parser.add_argument("--compression", choices=tarball.COMPRESSIONS, default="gzip")
    args = parser.parse_args(argv)
    bundle_layer(args.layer).write(args.output, args.compression)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
