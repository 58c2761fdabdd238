"""Tests for tools/bench/update_cost.py: which layers a source's update re-pulls, and the summary figures."""

from __future__ import annotations

import io
import tarfile

import pytest

from tools.bench.results import PER_SOURCE
from tools.bench.update_cost import LayerContent, layer_content, status_source, update_cost


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def package(name: str, source: str | None, files: list[str]) -> dict[str, bytes]:
    """A package's status.d entry and .md5sums, as deb_to_layer writes them, and its files."""
    status = f"Package: {name}\n" + (f"Source: {source}\n" if source else "") + "Version: 1\n"
    md5sums = "".join(f"{'0' * 32}  {path}\n" for path in files)
    return {f"var/lib/dpkg/status.d/{name}": status.encode(), f"var/lib/dpkg/status.d/{name}.md5sums":
            md5sums.encode(), **{path: b"x" for path in files}}


def test_status_source_reads_the_source_field_or_the_package() -> None:
    assert status_source("Package: libc6\nSource: glibc\nVersion: 2.36-9\n") == "glibc"
    assert status_source("Package: busybox-static\nSource: busybox (1:1.35.0-4)\n") == "busybox"
    assert status_source("Package: dash\nVersion: 0.5.12-2\n") == "dash"


def test_layer_content_finds_sources_and_what_generated_layers_read() -> None:
    tar = tar_of({**package("libpython3.9-stdlib", "python3.9", ["usr/lib/python3.9/os.py"]),
                  **package("libssl1.1", "openssl", ["usr/lib/x86_64-linux-gnu/libssl.so.1.1"]),
                  **package("ca-certificates", None, ["usr/share/ca-certificates/mozilla/A.crt"])})
    content = layer_content("grouped.tar.gz", 10, tar)
    assert content.sources == {"python3.9", "openssl", "ca-certificates"}
    assert content.inputs == {"python3.9": {"_pyc.tar.gz"}, "openssl": set(), "ca-certificates": {"_ca_bundle.tar.gz"}}


def layers() -> list[LayerContent]:
    return [
        LayerContent("x_base_files.tar.gz", 5, set(), {}),
        LayerContent("x_src_glibc.tar.gz", 600, {"glibc"}, {"glibc": set()}),
        LayerContent("x_src_folded.tar.gz", 40, {"zlib", "netbase"}, {"zlib": set(), "netbase": set()}),
        LayerContent("x_src_python3.9.tar.gz", 900, {"python3.9"}, {"python3.9": {"_pyc.tar.gz"}}),
        LayerContent("x_src_ca-certificates.tar.gz", 20, {"ca-certificates"},
                     {"ca-certificates": {"_ca_bundle.tar.gz"}}),
        LayerContent("x_ca_bundle.tar.gz", 25, set(), {}),
        LayerContent("x_ld_so_cache.tar.gz", 7, set(), {}),
        LayerContent("x_pyc.tar.gz", 300, set(), {}),
    ]


def test_update_cost_counts_the_holding_and_the_generated_layers() -> None:
    cost = update_cost("x", PER_SOURCE, layers())
    by_source = {s.source: (s.bytes, s.layers) for s in cost.sources}
    assert by_source == {
        "ca-certificates": (45, ["x_src_ca-certificates.tar.gz", "x_ca_bundle.tar.gz"]),
        "glibc": (600, ["x_src_glibc.tar.gz"]),
        "netbase": (40, ["x_src_folded.tar.gz"]),  # a folded source re-pulls the whole folded layer
        "python3.9": (1200, ["x_src_python3.9.tar.gz", "x_pyc.tar.gz"]),
        "zlib": (40, ["x_src_folded.tar.gz"]),
    }
    assert (cost.layer_count, cost.cold_pull) == (8, 1897)
    assert (cost.median, cost.mean, cost.max) == (45, (45 + 600 + 40 + 1200 + 40) / 5, 1200)


def test_update_cost_in_one_layer_per_group() -> None:
    grouped = [LayerContent("x_grouped_system.tar.gz", 700, {"glibc", "zlib"}, {"glibc": set(), "zlib": set()}),
               LayerContent("x_grouped_python.tar.gz", 900, {"python3.9", "libffi"},
                            {"python3.9": {"_pyc.tar.gz"}, "libffi": set()}),
               LayerContent("x_pyc.tar.gz", 300, set(), {})]
    by_source = {s.source: s.bytes for s in update_cost("x", "group", grouped).sources}
    # libffi shares the python layer but does not ship the stdlib: the .pyc layer does not change with it.
    assert by_source == {"glibc": 700, "zlib": 700, "python3.9": 1200, "libffi": 900}


def test_an_image_without_packages_is_an_error() -> None:
    with pytest.raises(ValueError, match="no layer holds a /var/lib/dpkg/status.d/ entry"):
        update_cost("x", PER_SOURCE, [LayerContent("x_pyc.tar.gz", 1, set(), {})])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
