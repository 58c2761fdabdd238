"""Tests for tools/image/ca_bundle.py: the bundle's contents and order, OpenSSL's default links, and errors."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tools import tarball
from tools.image import ca_bundle

CERTS = "usr/share/ca-certificates"


def pem(name: str) -> bytes:
    return f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----".encode()


def write_layer(path: Path, files: dict[str, bytes], symlinks: dict[str, str] | None = None,
                compression: str = "gzip") -> Path:
    layer = tarball.Layer()
    for file_path, data in files.items():
        layer.add_file(file_path, data)
    for link, target in (symlinks or {}).items():
        layer.add_symlink(link, target)
    layer.write(path, compression)
    return path


def members(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    return {info.name.rstrip("/"): (info, data) for info, data in tarball.iter_members(io.BytesIO(path.read_bytes()))}


def run(tmp_path: Path, *layers: Path, compression: str = "gzip", name: str = "bundle.tar.gz") -> tuple[int, Path]:
    output = tmp_path / "out" / name
    argv = [arg for layer in layers for arg in ("--layer", str(layer))]
    return ca_bundle.main([*argv, "--output", str(output), "--compression", compression]), output


def test_bundle_concatenates_certificates_in_path_order(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "ca.tar.gz", {
        f"{CERTS}/mozilla/B_Root.crt": pem("B") + b"\n",
        f"{CERTS}/mozilla/A_Root.crt": pem("A"),  # no final newline: one is added
        f"{CERTS}/local/Z_Local.crt": pem("Z") + b"\n",
    })

    status, output = run(tmp_path, layer)

    assert status == 0
    info, data = members(output)[ca_bundle.BUNDLE]
    assert info.isreg() and info.mode == 0o644 and (info.uid, info.gid) == (0, 0)
    assert data == pem("Z") + b"\n" + pem("A") + b"\n" + pem("B") + b"\n"


def test_only_regular_crt_files_under_the_certificates_directory(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "ca.tar", {
        f"{CERTS}/mozilla/Good.crt": pem("good") + b"\n",
        f"{CERTS}/mozilla/README": b"not a certificate\n",
        f"{CERTS}/mozilla/Other.pem": pem("pem") + b"\n",
        f"{CERTS}/mozilla/Backup.crt.orig": pem("orig") + b"\n",
        f"{CERTS}.crt": pem("sibling") + b"\n",
        "usr/share/ca-certificates-extra/Extra.crt": pem("extra") + b"\n",
        "etc/ssl/certs/Elsewhere.crt": pem("elsewhere") + b"\n",
    }, symlinks={f"{CERTS}/mozilla/Link.crt": "Good.crt"}, compression="none")

    status, output = run(tmp_path, layer)

    assert status == 0
    assert members(output)[ca_bundle.BUNDLE][1] == pem("good") + b"\n"


def test_openssl_default_paths_link_to_the_bundle(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "ca.tar.gz", {f"{CERTS}/mozilla/A.crt": pem("A") + b"\n"})

    status, output = run(tmp_path, layer)

    assert status == 0
    entries = members(output)
    cert_pem, _ = entries["usr/lib/ssl/cert.pem"]
    assert cert_pem.issym() and cert_pem.linkname == "/etc/ssl/certs/ca-certificates.crt"
    certs, _ = entries["usr/lib/ssl/certs"]
    assert certs.issym() and certs.linkname == "/etc/ssl/certs"
    # Both link targets are in the layer itself.
    assert entries["etc/ssl/certs"][0].isdir()
    # Nothing else but the bundle, the links and their parent directories.
    assert {name for name, (info, _) in entries.items() if not info.isdir()} == {
        "etc/ssl/certs/ca-certificates.crt", "usr/lib/ssl/cert.pem", "usr/lib/ssl/certs"
    }


def test_certificates_from_several_layers_merge_later_wins(tmp_path: Path) -> None:
    first = write_layer(tmp_path / "one.tar.gz", {
        f"{CERTS}/mozilla/A.crt": pem("old A") + b"\n", f"{CERTS}/mozilla/C.crt": pem("C") + b"\n",
    })
    second = write_layer(tmp_path / "two.tar", {
        f"{CERTS}/mozilla/A.crt": pem("new A") + b"\n", f"{CERTS}/mozilla/B.crt": pem("B") + b"\n",
    }, compression="none")

    status, output = run(tmp_path, first, second)

    assert status == 0
    assert members(output)[ca_bundle.BUNDLE][1] == b"".join(pem(n) + b"\n" for n in ("new A", "B", "C"))


def test_output_is_deterministic(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "ca.tar.gz", {f"{CERTS}/mozilla/A.crt": pem("A"), f"{CERTS}/b/B.crt": pem("B")})

    _, first = run(tmp_path, layer, name="first.tar.gz")
    _, second = run(tmp_path, layer, name="second.tar.gz")

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[:2] == b"\x1f\x8b"


def test_uncompressed_output(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "ca.tar.gz", {f"{CERTS}/mozilla/A.crt": pem("A")})
    status, output = run(tmp_path, layer, compression="none", name="bundle.tar")
    assert status == 0
    with tarfile.open(output, mode="r:") as tar:
        assert tar.getmember(ca_bundle.BUNDLE).size == len(pem("A")) + 1


def test_no_certificates_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "empty.tar.gz", {
        f"{CERTS}/mozilla/README": b"no certificates here\n", "etc/ssl/certs/Other.crt": pem("x"),
    })

    status, output = run(tmp_path, layer)

    assert status == 1
    assert not output.exists()
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
    err = capsys.readouterr().err
    assert err.startswith("ca_bundle: error: no certificates under /usr/share/ca-certificates")
    assert "ca-certificates package" in err
    assert len(err.splitlines()) == 1


def test_bundle_function_raises_on_an_empty_layer() -> None:
    with pytest.raises(ca_bundle.CaBundleError):
        ca_bundle.bundle(tarball.Layer())


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
