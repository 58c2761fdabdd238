"""Tests for tools/bench/image.py: images read through tools/oci/layout.py from layouts that test writes with
the same module, layer names from the config's history, image sizes, and what pruning removed."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tools import tarball
from tools.bench import image
from tools.bench.console import BenchError
from tools.oci import layout as oci


def layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_layout(directory: Path, layers: dict[str, bytes], labels: dict[str, str] | None = None,
                 history: list[dict[str, Any]] | None = None, architecture: str = "amd64") -> oci.Layout:
    """An OCI layout of one image whose layers are `layers` (file name -> uncompressed tar), gzipped."""
    out = oci.Layout(directory)
    compressed = {name: tarball.compress(tar, "gzip") for name, tar in layers.items()}
    config = {
        "architecture": architecture, "os": "linux", "config": {"Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": [oci.sha256_digest(tar) for tar in layers.values()]},
        "history": history if history is not None else [
            {"created_by": f"bazel-out/k8-fastbuild/bin/python/{name}"} for name in layers],
    }
    config_data = oci.canonical_json(config)
    manifest = {
        "schemaVersion": 2, "mediaType": oci.MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": oci.CONFIG_MEDIA_TYPE, "digest": out.write_blob(config_data), "size": len(config_data)},
        "layers": [{"mediaType": oci.LAYER_MEDIA_TYPES["gzip"], "digest": out.write_blob(data), "size": len(data)}
                   for data in compressed.values()],
    }
    manifest_data = oci.canonical_json(manifest)
    out.write_blob(manifest_data)
    out.write_index([oci.descriptor(oci.MANIFEST_MEDIA_TYPE, manifest_data)])
    return out


LAYERS = {
    "base_files.tar.gz": layer_tar({"etc/passwd": b"root:x:0:0::/root:/sbin/nologin\n"}),
    "3.9_amd64_python.tar.gz": layer_tar({"usr/bin/python3.9": b"\x7fELF" + b"x" * 5000}),
    "3.9_amd64_pyc.tar.gz": layer_tar({"usr/lib/python3.9/__pycache__/os.cpython-39.pyc": b"pyc" * 300}),
}


def test_read_image_names_layers_and_finds_their_blobs(tmp_path: Path) -> None:
    written = write_layout(tmp_path / "3.9_amd64", LAYERS)
    built = image.read_image(tmp_path / "3.9_amd64")
    assert [layer.name for layer in built.layers] == list(LAYERS)
    for layer, tar in zip(built.layers, LAYERS.values()):
        assert tarball.decompress(layer.blob.read_bytes()) == tar
    index_digest = written.read_index()["manifests"][0]["digest"]
    assert built.manifest_digest == index_digest == image.manifest_digest(tmp_path / "3.9_amd64")
    assert image.pyc_layer_index([layer.name for layer in built.layers]) == 2


def test_layer_sizes_compressed_as_pushed_and_uncompressed(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", LAYERS)
    built = image.read_image(tmp_path / "img")
    sizes = image.layer_sizes(built)
    assert [(s.name, s.uncompressed) for s in sizes] == [(name, len(tar)) for name, tar in LAYERS.items()]
    assert [(s.digest, s.compressed) for s in sizes] == [
        ("sha256:" + hashlib.sha256(layer.blob.read_bytes()).hexdigest(), layer.blob.stat().st_size)
        for layer in built.layers]


def test_a_corrupt_layer_is_a_bench_error(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", LAYERS)
    built = image.read_image(tmp_path / "img")
    built.layers[1].blob.write_bytes(b"not the layer")
    with pytest.raises(BenchError, match="does not match its descriptor"):
        image.layer_sizes(built)


def test_not_a_layout_is_a_bench_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="not an OCI image layout"):
        image.read_image(tmp_path)


def test_history_must_name_every_layer(tmp_path: Path) -> None:
    write_layout(tmp_path / "img", LAYERS, history=[{"created_by": "base_files.tar.gz"}])
    with pytest.raises(BenchError, match="1 history entries for 3 layers"):
        image.read_image(tmp_path / "img")


def test_layer_names_come_from_non_empty_history() -> None:
    config = {"history": [{"created_by": "base_files.tar.gz"}, {"created_by": "ENV x", "empty_layer": True},
                          {"created_by": "bazel-out/k8/bin/python/3.9_amd64_pyc.tar.gz"}]}
    names = image.layer_names(config)
    assert names == ["base_files.tar.gz", "3.9_amd64_pyc.tar.gz"]
    assert image.pyc_layer_index(names) == 1


def test_pyc_layer_must_be_unique() -> None:
    with pytest.raises(BenchError, match="exactly one"):
        image.pyc_layer_index(["a.tar.gz"])
    with pytest.raises(BenchError, match="exactly one"):
        image.pyc_layer_index(["a_pyc.tar.gz", "b_pyc.tar.gz"])


def test_image_size_sums_the_layers_and_reads_the_label(tmp_path: Path) -> None:
    write_layout(tmp_path / "3.13_arm64", LAYERS, labels={"python.version": "3.13.5"}, architecture="arm64")
    size = image.image_size(tmp_path / "3.13_arm64", "//python:3.13_arm64")
    assert (size.target, size.python, size.architecture) == ("//python:3.13_arm64", "3.13.5", "arm64")
    assert size.uncompressed == sum(len(tar) for tar in LAYERS.values())
    assert size.compressed == sum(len(tarball.compress(tar, "gzip")) for tar in LAYERS.values())


def test_image_sizes_lists_default_variants_by_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["3.13_arm64", "3.9_amd64", "3.13_amd64", "3.14_riscv64", "3.9_amd64_nonroot", "3.11_amd64_debug",
                 "base_files"]:
        (tmp_path / name).mkdir()
    (tmp_path / "3.11_amd64").write_text("a file, not an image")
    monkeypatch.setattr(image, "image_size", lambda layout, target: target)
    assert image.image_sizes(tmp_path) == ["//python:3.9_amd64", "//python:3.13_amd64", "//python:3.13_arm64",
                                           "//python:3.14_riscv64"]


def test_topmost_removed_paths() -> None:
    removed = {"usr/lib/python3.9/turtle.py", "usr/lib/python3.9/idlelib", "usr/lib/python3.9/idlelib/x.py"}
    assert image.topmost(removed) == ["usr/lib/python3.9/idlelib", "usr/lib/python3.9/turtle.py"]


def test_pruning_compares_the_python_layer_before_and_after(tmp_path: Path) -> None:
    before = layer_tar({"./usr/lib/python3.9/os.py": b"os", "usr/lib/python3.9/turtle.py": b"t" * 3000,
                        "usr/lib/python3.9/idlelib/": b"", "usr/lib/python3.9/idlelib/x.py": b"x"})
    after = layer_tar({"usr/lib/python3.9/os.py": b"os"})
    (tmp_path / "3.9_amd64_src_python3.9_debs.tar.gz").write_bytes(tarball.compress(before, "gzip"))
    (tmp_path / "3.9_amd64_src_python3.9.tar.gz").write_bytes(tarball.compress(after, "gzip"))
    result = image.pruning(tmp_path, "3.9_amd64")
    assert result.layer == "3.9_amd64_src_python3.9"
    assert result.removed == ["usr/lib/python3.9/idlelib", "usr/lib/python3.9/turtle.py"]
    assert (result.before_uncompressed, result.after_uncompressed) == (len(before), len(after))
    assert result.before_compressed == (tmp_path / "3.9_amd64_src_python3.9_debs.tar.gz").stat().st_size
    with pytest.raises(BenchError, match=r"expected one 3.9_arm64_src_\*_debs.tar.gz .* found 0"):
        image.pruning(tmp_path, "3.9_arm64")
    (tmp_path / "3.9_amd64_src_python3.9.tar.gz").unlink()
    with pytest.raises(BenchError, match="3.9_amd64_src_python3.9.tar.gz is missing"):
        image.pruning(tmp_path, "3.9_amd64")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
