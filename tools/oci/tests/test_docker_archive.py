"""Tests for tools/oci/docker_archive.py: archive structure, zstd conversion, platform choice and bad input."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tools import tarball
from tools.oci import build_layout, docker_archive
from tools.oci.layout import Image, Layout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def archive_members(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return {
            info.name: (info, tar.extractfile(info).read() if info.isreg() else b"")  # type: ignore[union-attr]
            for info in tar
        }


def convert(tmp_path: Path, layout: Path, *flags: str, name: str = "image.tar") -> tuple[int, Path]:
    output = tmp_path / name
    return docker_archive.main(["--layout", str(layout), "--output", str(output), *flags]), output


@pytest.fixture
def image_layout(build_image, make_layer) -> Path:
    return build_image(
        "image",
        "--layer", str(make_layer("base.tar.gz", {"etc/os-release": b"ID=debian\n"}, "gzip")),
        "--layer", str(make_layer("app.tar.zst", {"app/main.py": b"pass\n"}, "zstd")),
        "--layer", str(make_layer("conf.tar", {"etc/app.conf": b"x=1\n"}, "none")),
        "--entrypoint", '["/app/main.py"]',
    )


@pytest.fixture
def image(image_layout) -> Image:
    return Layout(image_layout).single_image()


def test_manifest_names_config_tag_and_layers(tmp_path, image_layout, image):
    status, output = convert(tmp_path, image_layout, "--tag", "example.com/app:1.0")
    members = archive_members(output)

    assert status == 0
    [entry] = json.loads(members["manifest.json"][1])
    config_hex = image.manifest["config"]["digest"].removeprefix("sha256:")
    assert entry["Config"] == f"{config_hex}.json"
    assert entry["RepoTags"] == ["example.com/app:1.0"]
    assert len(entry["Layers"]) == 3
    assert members[entry["Config"]][1] == Layout(image_layout).read_blob(image.manifest["config"])
    for name in entry["Layers"]:
        assert name.startswith("blobs/sha256/")
        assert sha256(members[name][1]) == "sha256:" + name.removeprefix("blobs/sha256/")


def test_layers_match_the_config_diff_ids(tmp_path, image_layout, image):
    _, output = convert(tmp_path, image_layout, "--tag", "app:latest")
    members = archive_members(output)
    [entry] = json.loads(members["manifest.json"][1])

    assert [sha256(tarball.decompress(members[name][1])) for name in entry["Layers"]] == image.diff_ids


def test_zstd_layer_becomes_a_plain_tar_and_gzip_stays(tmp_path, image_layout, image):
    _, output = convert(tmp_path, image_layout, "--tag", "app:latest")
    members = archive_members(output)
    [entry] = json.loads(members["manifest.json"][1])
    gzip_layer, zstd_layer, plain_layer = (members[name][1] for name in entry["Layers"])

    assert gzip_layer == Layout(image_layout).read_blob(image.manifest["layers"][0])
    assert zstd_layer[:4] != b"\x28\xb5\x2f\xfd"
    assert [info.name for info, _ in tarball.iter_members(io.BytesIO(zstd_layer))] == ["app", "app/main.py"]
    assert sha256(zstd_layer) == image.diff_ids[1]
    assert plain_layer == Layout(image_layout).read_blob(image.manifest["layers"][2])


def test_archive_is_a_deterministic_tar(tmp_path, image_layout):
    _, first = convert(tmp_path, image_layout, "--tag", "app:latest", name="first.tar")
    _, second = convert(tmp_path, image_layout, "--tag", "app:latest", name="elsewhere/second.tar")
    members = archive_members(first)

    assert first.read_bytes() == second.read_bytes()
    assert list(members) == sorted(members, key=lambda name: name.split("/"))
    assert {(info.mtime, info.uid, info.gid) for info, _ in members.values()} == {(tarball.GENERATED_MTIME, 0, 0)}


@pytest.fixture
def index_layout(tmp_path, build_image, make_layer) -> Path:
    amd64 = build_image("amd64", "--layer", str(make_layer("x86.tar.gz", {"x86": b"x"})))
    arm64_layer = make_layer("arm.tar.gz", {"arm": b"a"})
    arm64 = build_image("arm64", "--layer", str(arm64_layer), "--architecture", "arm64", "--variant", "v8")
    output = tmp_path / "index"
    assert build_layout.main(["index", "--output", str(output), "--image", str(amd64), "--image", str(arm64)]) == 0
    return output


@pytest.mark.parametrize("platform", ["linux/arm64", "linux/arm64/v8"])
def test_platform_picks_an_image_from_an_index(tmp_path, index_layout, platform):
    status, output = convert(tmp_path, index_layout, "--tag", "app:latest", "--platform", platform)
    members = archive_members(output)
    [entry] = json.loads(members["manifest.json"][1])

    assert status == 0
    assert json.loads(members[entry["Config"]][1])["architecture"] == "arm64"


# --- bad input ---------------------------------------------------------------------------


def assert_fails_with(capsys, status: int, message: str) -> None:
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("docker_archive: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_index_without_platform_is_ambiguous(tmp_path, capsys, index_layout):
    status, _ = convert(tmp_path, index_layout, "--tag", "app:latest")
    assert_fails_with(capsys, status, "holds several images (linux/amd64, linux/arm64/v8); choose one with --platform")


@pytest.mark.parametrize("platform", ["linux/s390x", "linux/arm64/v7"])
def test_platform_not_in_the_layout(tmp_path, capsys, index_layout, platform):
    status, _ = convert(tmp_path, index_layout, "--tag", "app:latest", "--platform", platform)
    assert_fails_with(capsys, status, f"has no image for platform {platform} (it has: linux/amd64, linux/arm64/v8)")


def test_single_image_of_another_platform(tmp_path, capsys, image_layout):
    status, _ = convert(tmp_path, image_layout, "--tag", "app:latest", "--platform", "linux/arm64")
    assert_fails_with(capsys, status, "has no image for platform linux/arm64")


@pytest.mark.parametrize("platform", ["linux", "linux/", "linux/arm64/v8/extra"])
def test_malformed_platform(tmp_path, capsys, image_layout, platform):
    status, _ = convert(tmp_path, image_layout, "--tag", "app:latest", "--platform", platform)
    assert_fails_with(capsys, status, "expected OS/ARCHITECTURE[/VARIANT]")


@pytest.mark.parametrize("tag", ["app", "App:latest", "app:", "example.com:5000/app", "app:bad tag"])
def test_tag_must_be_repository_colon_tag(tmp_path, capsys, image_layout, tag):
    status, output = convert(tmp_path, image_layout, "--tag", tag)
    assert_fails_with(capsys, status, "expected REPOSITORY:TAG")
    assert not output.exists()


def test_missing_layout(tmp_path, capsys):
    status, _ = convert(tmp_path, tmp_path / "nowhere", "--tag", "app:latest")
    assert_fails_with(capsys, status, "is not an OCI image layout")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
