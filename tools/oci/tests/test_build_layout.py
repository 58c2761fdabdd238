"""Tests for tools/oci/build_layout.py: image and index layouts, base merging, determinism and bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tools import tarball
from tools.oci import build_layout
from tools.oci.layout import (
    CONFIG_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    Image,
    Layout,
    canonical_json,
    descriptor,
)

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def only_image(layout: Path) -> Image:
    return Layout(layout).single_image()


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


@pytest.fixture
def three_layers(make_layer) -> list[Path]:
    """One layer per compression, in the order gzip, zstd, none."""
    return [
        make_layer("python.tar.gz", {"usr/bin/python3": b"python"}, "gzip"),
        make_layer("app.tar.zst", {"app/main.py": b"print('hi')\n"}, "zstd"),
        make_layer("config.tar", {"etc/app.conf": b"debug = false\n"}, "none"),
    ]


def layer_flags(layers: list[Path]) -> list[str]:
    return [flag for layer in layers for flag in ("--layer", str(layer))]


# --- image: layout structure ---------------------------------------------------------------


def test_layout_has_oci_layout_index_and_blobs(build_image, three_layers):
    layout = build_image("image", *layer_flags(three_layers))

    assert read_json(layout / "oci-layout") == {"imageLayoutVersion": "1.0.0"}
    index = read_json(layout / "index.json")
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == INDEX_MEDIA_TYPE
    [manifest_descriptor] = index["manifests"]
    assert manifest_descriptor == descriptor(MANIFEST_MEDIA_TYPE, blob(layout, manifest_descriptor["digest"]))


def test_every_blob_is_named_by_its_digest(build_image, three_layers):
    layout = build_image("image", *layer_flags(three_layers))

    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    assert len(blobs) == 5  # three layers, config, manifest
    for path in blobs:
        assert sha256(path.read_bytes()) == f"sha256:{path.name}"


def test_json_files_are_canonical(build_image, three_layers):
    layout = build_image("image", *layer_flags(three_layers), "--env", "Z=1", "--label", "b=2", "--label", "a=1")
    image = only_image(layout)

    for data in (
        (layout / "index.json").read_bytes(),
        blob(layout, image.manifest_descriptor["digest"]),
        blob(layout, image.manifest["config"]["digest"]),
    ):
        assert data == canonical_json(json.loads(data))


def test_layer_media_types_follow_compression(build_image, three_layers):
    image = only_image(build_image("image", *layer_flags(three_layers)))

    assert [layer["mediaType"] for layer in image.manifest["layers"]] == [GZIP, ZSTD, TAR]
    for layer, path in zip(image.manifest["layers"], three_layers, strict=True):
        assert layer["digest"] == sha256(path.read_bytes())
        assert layer["size"] == path.stat().st_size


def test_diff_ids_are_digests_of_the_uncompressed_tars(build_image, three_layers):
    gzip_layer, zstd_layer, plain_layer = three_layers
    image = only_image(build_image("image", *layer_flags(three_layers)))

    assert image.config["rootfs"] == {
        "type": "layers",
        "diff_ids": [
            sha256(gzip.decompress(gzip_layer.read_bytes())),
            sha256(tarball.decompress(zstd_layer.read_bytes())),
            sha256(plain_layer.read_bytes()),
        ],
    }


def test_config_and_manifest_carry_the_flags(build_image, three_layers):
    layout = build_image(
        "image",
        *layer_flags(three_layers),
        "--entrypoint", '["/usr/bin/python3", "-m"]',
        "--cmd", '["app"]',
        "--env", "PATH=/usr/bin",
        "--env", "LANG=C.UTF-8",
        "--user", "65532",
        "--workdir", "/app",
        "--label", "org.opencontainers.image.source=https://example.com/app",
        "--label", "equation=a=b",
        "--annotation", "org.opencontainers.image.version=1.2",
        "--architecture", "arm64",
        "--variant", "v8",
        "--created", "2024-05-01T12:00:00Z",
    )
    image = only_image(layout)

    assert image.manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert image.manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    assert image.manifest["annotations"] == {"org.opencontainers.image.version": "1.2"}
    config = image.config
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
    assert config["created"] == "2024-05-01T12:00:00Z"
    assert config["config"] == {
        "Entrypoint": ["/usr/bin/python3", "-m"],
        "Cmd": ["app"],
        "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
        "User": "65532",
        "WorkingDir": "/app",
        "Labels": {"org.opencontainers.image.source": "https://example.com/app", "equation": "a=b"},
    }
    assert config["history"] == [
        {"created": "2024-05-01T12:00:00Z", "created_by": name}
        for name in ("python.tar.gz", "app.tar.zst", "config.tar")
    ]


def test_defaults_without_flags(build_image, make_layer):
    image = only_image(build_image("image", "--layer", str(make_layer("a.tar.gz", {"a": b"a"}))))

    assert "annotations" not in image.manifest
    assert (image.config["os"], image.config["architecture"]) == ("linux", "amd64")
    assert "variant" not in image.config
    assert image.config["created"] == "1970-01-01T00:00:00Z"
    assert image.config["config"] == {}
    assert len(image.config["history"]) == 1


def test_image_without_layers(build_image):
    image = only_image(build_image("empty"))

    assert image.manifest["layers"] == []
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": []}


def test_env_may_refer_to_earlier_values(build_image):
    image = only_image(build_image("image", "--env", "A=1", "--env", "B=${A}:$A:$UNSET", "--env", "A=2"))

    assert image.config["config"]["Env"] == ["A=2", "B=1:1:"]


def test_same_inputs_give_the_same_digest_in_other_directories(tmp_path, make_layer, build_image):
    def build(directory: str) -> bytes:
        layers = [
            make_layer("base.tar.gz", {"etc/os-release": b"ID=debian\n"}, "gzip", directory),
            make_layer("app.tar.zst", {"app/main.py": b"pass\n"}, "zstd", directory),
        ]
        layout = build_image(f"{directory}/out/image", *layer_flags(layers), "--env", "A=1", "--label", "x=y")
        return (layout / "index.json").read_bytes()

    assert build("machine-one") == build("elsewhere/machine-two")


def test_output_may_be_an_existing_empty_directory(tmp_path, build_image):
    (tmp_path / "declared").mkdir()

    assert (build_image("declared") / "index.json").is_file()


# --- image: base images ----------------------------------------------------------------


@pytest.fixture
def base(build_image, make_layer) -> Path:
    return build_image(
        "base",
        "--layer", str(make_layer("base.tar.gz", {"etc/os-release": b"ID=debian\n"})),
        "--entrypoint", '["/bin/base"]',
        "--cmd", '["--base-flag"]',
        "--env", "PATH=/usr/bin",
        "--env", "LANG=C",
        "--user", "nonroot",
        "--workdir", "/home/nonroot",
        "--label", "maintainer=base",
        "--label", "tier=os",
        "--annotation", "org.opencontainers.image.title=base",
        "--architecture", "arm64",
        "--variant", "v8",
        "--created", "2020-01-01T00:00:00Z",
    )


def test_base_layers_come_first(base, build_image, make_layer):
    app_layer = make_layer("app.tar.gz", {"app/main.py": b"pass\n"})
    base_image = only_image(base)
    layout = build_image("app", "--base", str(base), "--layer", str(app_layer))
    image = only_image(layout)

    assert image.manifest["layers"] == [*base_image.manifest["layers"], descriptor(GZIP, app_layer.read_bytes())]
    assert image.config["rootfs"]["diff_ids"] == [*base_image.diff_ids, sha256(gzip.decompress(app_layer.read_bytes()))]
    assert [entry["created_by"] for entry in image.config["history"]] == ["base.tar.gz", "app.tar.gz"]
    assert image.config["created"] == "1970-01-01T00:00:00Z"
    for layer in image.manifest["layers"]:
        assert sha256(blob(layout, layer["digest"])) == layer["digest"]


def test_base_settings_are_kept_when_not_given(base, build_image):
    image = only_image(build_image("app", "--base", str(base)))

    assert image.config["config"] == only_image(base).config["config"]
    assert (image.config["architecture"], image.config["variant"]) == ("arm64", "v8")
    assert "annotations" not in image.manifest  # annotations describe one manifest; they are not inherited


def test_env_and_labels_merge_by_key(base, build_image):
    image = only_image(
        build_image("app", "--base", str(base), "--env", "PATH=/app/bin:$PATH", "--env", "APP=1", "--label", "tier=app")
    )

    assert image.config["config"]["Env"] == ["PATH=/app/bin:/usr/bin", "LANG=C", "APP=1"]
    assert image.config["config"]["Labels"] == {"maintainer": "base", "tier": "app"}


def test_user_and_workdir_override_the_base(base, build_image):
    image = only_image(build_image("app", "--base", str(base), "--user", "root", "--workdir", "/"))

    assert (image.config["config"]["User"], image.config["config"]["WorkingDir"]) == ("root", "/")


def test_entrypoint_resets_the_base_cmd(base, build_image):
    image = only_image(build_image("app", "--base", str(base), "--entrypoint", '["/app/run"]'))

    assert image.config["config"]["Entrypoint"] == ["/app/run"]
    assert "Cmd" not in image.config["config"]


def test_entrypoint_and_cmd_together(base, build_image):
    image = only_image(build_image("app", "--base", str(base), "--entrypoint", '["/app/run"]', "--cmd", '["serve"]'))

    assert (image.config["config"]["Entrypoint"], image.config["config"]["Cmd"]) == (["/app/run"], ["serve"])


def test_cmd_alone_keeps_the_base_entrypoint(base, build_image):
    image = only_image(build_image("app", "--base", str(base), "--cmd", '["serve"]'))

    assert (image.config["config"]["Entrypoint"], image.config["config"]["Cmd"]) == (["/bin/base"], ["serve"])


def test_docker_media_types_in_a_base_become_oci_types(tmp_path, make_layer, build_image):
    layer = make_layer("base.tar.gz", {"a": b"a"}).read_bytes()
    docker_base = Layout(tmp_path / "docker-base")
    docker_base.write_blob(layer)
    rootfs = {"type": "layers", "diff_ids": [sha256(gzip.decompress(layer))]}
    config = canonical_json({"os": "linux", "architecture": "amd64", "rootfs": rootfs})
    docker_base.write_blob(config)
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": descriptor("application/vnd.docker.container.image.v1+json", config),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)],
    })
    docker_base.write_blob(manifest)
    docker_base.write_index([descriptor("application/vnd.docker.distribution.manifest.v2+json", manifest)])

    image = only_image(build_image("app", "--base", str(docker_base.root)))

    assert image.manifest["layers"] == [descriptor(GZIP, layer)]
    assert image.manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE


def test_base_may_be_an_index_of_one_image(tmp_path, base, build_image):
    status, index = build_index(tmp_path, "index", base)
    assert status == 0

    image = only_image(build_image("app", "--base", str(index)))

    assert image.config["config"]["Entrypoint"] == ["/bin/base"]


def test_attestation_manifests_are_not_images(tmp_path, base, build_image):
    base_image = only_image(base)
    annotations = {"vnd.docker.reference.type": "attestation-manifest"}
    attestation = {**base_image.manifest_descriptor, "annotations": annotations}
    with_attestation = Layout(tmp_path / "with-attestation")
    for desc in base_image.blob_descriptors():
        with_attestation.copy_blob(base_image.layout, desc)
    with_attestation.write_index([base_image.manifest_descriptor, attestation])

    image = only_image(build_image("app", "--base", str(with_attestation.root)))

    assert image.config["config"]["Entrypoint"] == ["/bin/base"]


# --- index -------------------------------------------------------------------------------


def build_index(tmp_path: Path, name: str, *images: Path) -> tuple[int, Path]:
    output = tmp_path / name
    image_flags = [flag for image in images for flag in ("--image", str(image))]
    return build_layout.main(["index", "--output", str(output), *image_flags]), output


@pytest.fixture
def amd64_and_arm64(build_image, make_layer) -> list[Path]:
    shared = make_layer("shared.tar.gz", {"etc/os-release": b"ID=debian\n"})
    return [
        build_image("amd64", "--layer", str(shared), "--layer", str(make_layer("x86.tar.gz", {"lib/x86": b"x"}))),
        build_image("arm64", "--layer", str(shared), "--layer", str(make_layer("arm.tar.gz", {"lib/arm": b"a"})),
                    "--architecture", "arm64", "--variant", "v8"),
    ]


def test_index_points_at_a_nested_index_of_the_images(tmp_path, amd64_and_arm64):
    status, output = build_index(tmp_path, "index", *amd64_and_arm64)

    assert status == 0
    assert read_json(output / "oci-layout") == {"imageLayoutVersion": "1.0.0"}
    top = read_json(output / "index.json")
    assert top["mediaType"] == INDEX_MEDIA_TYPE
    [nested_descriptor] = top["manifests"]
    nested_bytes = blob(output, nested_descriptor["digest"])
    assert nested_descriptor == descriptor(INDEX_MEDIA_TYPE, nested_bytes)
    nested = json.loads(nested_bytes)
    assert (nested["schemaVersion"], nested["mediaType"]) == (2, INDEX_MEDIA_TYPE)
    images = [only_image(layout) for layout in amd64_and_arm64]
    assert nested["manifests"] == [
        {**images[0].manifest_descriptor, "platform": {"os": "linux", "architecture": "amd64"}},
        {**images[1].manifest_descriptor, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]


def test_index_copies_every_blob_of_every_image(tmp_path, amd64_and_arm64):
    _, output = build_index(tmp_path, "index", *amd64_and_arm64)

    copied = {path.name for path in (output / "blobs" / "sha256").iterdir()}
    expected = {
        desc["digest"].removeprefix("sha256:")
        for layout in amd64_and_arm64
        for desc in only_image(layout).blob_descriptors()
    }
    assert copied - expected == {read_json(output / "index.json")["manifests"][0]["digest"].removeprefix("sha256:")}
    assert expected <= copied
    assert [str(image.platform) for image in Layout(output).images()] == ["linux/amd64", "linux/arm64/v8"]


def test_index_is_deterministic(tmp_path, amd64_and_arm64):
    _, first = build_index(tmp_path, "first", *amd64_and_arm64)
    _, second = build_index(tmp_path, "elsewhere/second", *amd64_and_arm64)

    assert (first / "index.json").read_bytes() == (second / "index.json").read_bytes()


# --- bad input ---------------------------------------------------------------------------


def image_argv(tmp_path: Path, *flags: str) -> list[str]:
    return ["image", "--output", str(tmp_path / "out"), *flags]


def assert_fails_with(capsys, argv: list[str], message: str) -> None:
    assert build_layout.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("build_layout: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_layer_file(tmp_path, capsys):
    assert_fails_with(capsys, image_argv(tmp_path, "--layer", str(tmp_path / "nope.tar")), "cannot read layer")
    assert not (tmp_path / "out").exists()


def test_layer_that_is_not_a_tar(tmp_path, capsys):
    not_a_tar = tmp_path / "notes.txt"
    not_a_tar.write_text("hello\n" * 200)
    assert_fails_with(capsys, image_argv(tmp_path, "--layer", str(not_a_tar)), "is not a tar archive")


def test_base_with_several_images(tmp_path, capsys, amd64_and_arm64):
    _, index = build_index(tmp_path, "index", *amd64_and_arm64)
    assert_fails_with(capsys, image_argv(tmp_path, "--base", str(index)),
                      "holds 2 images (linux/amd64, linux/arm64/v8); expected exactly one")


def test_base_that_is_not_a_layout(tmp_path, capsys):
    assert_fails_with(capsys, image_argv(tmp_path, "--base", str(tmp_path)), "is not an OCI image layout")


def test_base_with_a_tampered_blob(tmp_path, capsys, base):
    layer = only_image(base).manifest["layers"][0]["digest"]
    (base / "blobs" / "sha256" / layer.removeprefix("sha256:")).write_bytes(b"tampered")
    assert_fails_with(capsys, image_argv(tmp_path, "--base", str(base)), "does not match its descriptor")


def test_platform_conflicting_with_the_base(tmp_path, capsys, base):
    assert_fails_with(capsys, image_argv(tmp_path, "--base", str(base), "--architecture", "amd64"),
                      "--architecture amd64 conflicts with the base image's architecture arm64")


@pytest.mark.parametrize("flag", ["--env", "--label", "--annotation"])
@pytest.mark.parametrize("value", ["NO_EQUALS", "=value"])
def test_key_value_flags_need_a_key_and_an_equals_sign(tmp_path, capsys, flag, value):
    assert_fails_with(capsys, image_argv(tmp_path, flag, value), f"{flag} {value!r}: expected KEY=VALUE")


@pytest.mark.parametrize("value", ["/bin/sh", '"/bin/sh"', '["/bin/sh", 1]', "[broken"])
def test_entrypoint_must_be_a_json_list_of_strings(tmp_path, capsys, value):
    assert_fails_with(capsys, image_argv(tmp_path, "--entrypoint", value), "expected a JSON list of strings")


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00Z"])
def test_created_must_be_rfc3339(tmp_path, capsys, value):
    assert_fails_with(capsys, image_argv(tmp_path, "--created", value), "expected an RFC 3339 time")


def test_output_directory_must_be_empty(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "leftover").write_text("x")
    assert_fails_with(capsys, image_argv(tmp_path), "is not empty")


def test_index_rejects_two_images_for_one_platform(tmp_path, capsys, build_image):
    first, second = build_image("one"), build_image("two", "--env", "A=1")
    argv = ["index", "--output", str(tmp_path / "out"), "--image", str(first), "--image", str(second)]
    assert_fails_with(capsys, argv, "several images for platform linux/amd64")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
