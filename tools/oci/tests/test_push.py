"""Tests for tools/oci/push.py: reference checks, layout digests, target selection and the push order.

crane is a shell script put first on PATH that records each call (and can fail on request), so no registry
or network is involved.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import pytest

from tools.oci import build_layout, push
from tools.oci.push import PushError, Target

IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


# --- repository and tag checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("repository", [
    "127.0.0.1:5000/distroless/python",
    "localhost/a/b_c",
    "[::1]:5000/xy",
    "registry.example.com/team/python",
    "Registry.Example.com:443/a/b",
    "python",
    "a/b__c/d-e/f--g.h",
])
def test_valid_repositories(repository: str) -> None:
    push.check_target(Target(Path("layout"), repository, ("latest",)))


@pytest.mark.parametrize("repository", [
    "127.0.0.1:5000/Distroless/python",
    "localhost/a/Python",
    "127.0.0.1:5000//python",
    "127.0.0.1:5000/distroless/",
    "/distroless/python",
    "",
    "localhost/a/_b",
    "localhost/a/b-",
    "localhost/a/b..c",
    "localhost/a/b___c",
    "localhost/a b",
    "127.0.0.1:5000/python:tag",
    "127.0.0.1:5000/python@sha256:" + "a" * 64,
    "[::1/x",
    "http://127.0.0.1:5000/x",
    "127.0.0.1:5000/distroless/python\n",
])
def test_invalid_repositories(repository: str) -> None:
    with pytest.raises(PushError, match="not a valid repository") as error:
        push.check_target(Target(Path("layout"), repository, ("latest",)))
    assert f"'{repository}'" in str(error.value)
    assert "--repository" in str(error.value)


@pytest.mark.parametrize("tag", ["latest", "3.13", "3.13-debian13", "_x", "A_b.c-D", "9", "a" * 128])
def test_valid_tags(tag: str) -> None:
    push.check_target(Target(Path("layout"), "127.0.0.1:5000/distroless/python", (tag,)))


@pytest.mark.parametrize("tag", ["", ".hidden", "-dash", "a:b", "a/b", "a b", "a+b", "t\u00e9", "a" * 129, "latest\n"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(PushError, match="not a valid tag") as error:
        push.check_target(Target(Path("layout"), "127.0.0.1:5000/distroless/python", ("latest", tag)))
    assert "127.0.0.1:5000/distroless/python" in str(error.value)
    assert "--tag" in str(error.value)


# --- layout_digest ---------------------------------------------------------------------------------------


def write_index(layout: Path, *manifests: dict[str, object]) -> Path:
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": list(manifests)}))
    return layout


def descriptor(media_type: str, digest: str) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest, "size": 123}


def test_layout_digest_of_one_image(tmp_path: Path) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    assert push.layout_digest(layout) == DIGEST_A


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_layout_digest_of_an_index(tmp_path: Path, media_type: str) -> None:
    layout = write_index(tmp_path / "index", descriptor(media_type, DIGEST_B))
    assert push.layout_digest(layout) == DIGEST_B


def test_layout_digest_without_media_type_is_an_image(tmp_path: Path) -> None:
    layout = write_index(tmp_path / "image", {"digest": DIGEST_A, "size": 1})
    assert push.layout_digest(layout) == DIGEST_A


@pytest.mark.parametrize("count", [0, 2])
def test_layout_digest_needs_exactly_one_manifest(tmp_path: Path, count: int) -> None:
    layout = write_index(tmp_path / "many", *[descriptor(IMAGE_MANIFEST, d) for d in (DIGEST_A, DIGEST_B)][:count])
    with pytest.raises(PushError, match=f"holds {count} manifests"):
        push.layout_digest(layout)


def test_layout_digest_without_index_json(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PushError, match="is not an OCI image layout") as error:
        push.layout_digest(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(error.value)
    assert "build the image first" in str(error.value)


@pytest.mark.parametrize("text", ["{not json", "{}", '{"manifest": []}'])
def test_layout_digest_of_a_broken_index_json(tmp_path: Path, text: str) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "index.json").write_text(text)
    with pytest.raises(PushError, match="is not an OCI image layout"):
        push.layout_digest(tmp_path / "broken")


def test_layout_digest_of_real_layouts(tmp_path: Path, build_image, make_layer) -> None:
    image = build_image("image", "--layer", str(make_layer("app.tar.gz", {"app/main.py": b"pass\n"})))
    [manifest] = json.loads((image / "index.json").read_text())["manifests"]
    assert push.layout_digest(image) == manifest["digest"]

    index = tmp_path / "index"
    assert build_layout.main(["index", "--output", str(index), "--image", str(image)]) == 0
    [index_descriptor] = json.loads((index / "index.json").read_text())["manifests"]
    digest = push.layout_digest(index)
    assert index_descriptor["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert digest == index_descriptor["digest"]
    assert (index / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()
    assert push.child_digests(index, digest) == [manifest["digest"]]
    assert push.child_digests(index, manifest["digest"]) == []


def test_child_digests_of_a_tampered_index(tmp_path: Path, build_image, make_layer) -> None:
    image = build_image("image", "--layer", str(make_layer("app.tar.gz", {"app/main.py": b"pass\n"})))
    index = tmp_path / "index"
    assert build_layout.main(["index", "--output", str(index), "--image", str(image)]) == 0
    digest = push.layout_digest(index)
    blob = index / "blobs" / "sha256" / digest.removeprefix("sha256:")
    blob.chmod(0o644)
    blob.write_text(blob.read_text().replace("manifests", "manifestz"))
    with pytest.raises(PushError, match=f"cannot read {digest} .*does not match its digest.*build the image again"):
        push.child_digests(index, digest)


# --- parse_image and targets -----------------------------------------------------------------------------


def test_parse_image() -> None:
    assert push.parse_image("out/py=python:3.13,latest") == (Path("out/py"), "python", ("3.13", "latest"))
    assert push.parse_image("out/py=team/python:x") == (Path("out/py"), "team/python", ("x",))


@pytest.mark.parametrize("spec", ["out/py", "=python:3.13", "out/py=python", "out/py=:3.13", "out/py=python:", ""])
def test_parse_image_rejects(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="LAYOUT=NAME:TAG"):
        push.parse_image(spec)


def namespace(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "layout": None, "default_repository": "", "default_tag": [], "image": [], "repository": None, "tag": None,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


IMAGES = [(Path("l1"), "python", ("3.13", "latest")), (Path("l2"), "python-nonroot", ("3.13",))]


def test_targets_prefix_from_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTROLESS_REPOSITORY", "env.example/ignored")
    assert push.targets(namespace(image=IMAGES, repository="127.0.0.1:5000/distroless/")) == [
        Target(Path("l1"), "127.0.0.1:5000/distroless/python", ("3.13", "latest")),
        Target(Path("l2"), "127.0.0.1:5000/distroless/python-nonroot", ("3.13",)),
    ]


def test_targets_prefix_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTROLESS_REPOSITORY", "localhost:5000/d")
    assert [t.repository for t in push.targets(namespace(image=IMAGES))] == [
        "localhost:5000/d/python", "localhost:5000/d/python-nonroot",
    ]


def test_targets_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTROLESS_REPOSITORY", raising=False)
    with pytest.raises(PushError, match="no repository.*DISTROLESS_REPOSITORY"):
        push.targets(namespace(image=IMAGES))
    monkeypatch.setenv("DISTROLESS_REPOSITORY", "/")
    with pytest.raises(PushError, match="no repository"):
        push.targets(namespace(image=IMAGES))


def test_targets_reject_tag_with_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTROLESS_REPOSITORY", "localhost:5000/d")
    with pytest.raises(PushError, match="-t/--tag"):
        push.targets(namespace(image=IMAGES, tag=["x"]))


def test_targets_of_one_layout() -> None:
    rule = {"layout": Path("img"), "default_repository": "r.example/py", "default_tag": ["a", "b"]}
    assert push.targets(namespace(**rule)) == [Target(Path("img"), "r.example/py", ("a", "b"))]
    assert push.targets(namespace(**rule, repository="other.example/x", tag=["c"])) == [
        Target(Path("img"), "other.example/x", ("c",))
    ]


def test_targets_of_one_layout_without_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTROLESS_REPOSITORY", "localhost:5000/d")  # only a prefix for --image, never used here
    with pytest.raises(PushError, match="no repository: pass --repository REGISTRY/NAME"):
        push.targets(namespace(layout=Path("img"), default_tag=["a"]))


def test_targets_of_one_layout_may_have_no_tags() -> None:
    assert push.targets(namespace(layout=Path("img"), default_repository="r.example/py")) == [
        Target(Path("img"), "r.example/py", ())
    ]


# --- push order, through a fake crane --------------------------------------------------------------------


class FakeCrane:
    """`crane` first on PATH: appends each call's arguments (tab-separated) to a log, fails on request."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        directory.mkdir()
        self.log = directory / "calls"
        script = directory / "crane"
        script.write_text(
            "#!/bin/sh\n"
            f"for a in \"$@\"; do printf '%s\\t' \"$a\"; done >> '{self.log}'\n"
            f"printf '\\n' >> '{self.log}'\n"
            'if [ "$1" = "$CRANE_FAIL_ON" ]; then\n'
            "  echo 'some progress' >&2\n"
            "  echo \"Error: $1: UNAUTHORIZED: authentication required\" >&2\n"
            "  exit 1\n"
            "fi\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{directory}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        monkeypatch.delenv("CRANE_FAIL_ON", raising=False)
        self.monkeypatch = monkeypatch

    def fail_on(self, command: str) -> None:
        self.monkeypatch.setenv("CRANE_FAIL_ON", command)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.rstrip("\t").split("\t") for line in self.log.read_text().splitlines()]


@pytest.fixture
def crane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCrane:
    return FakeCrane(tmp_path / "bin", monkeypatch)


REPOSITORY = "127.0.0.1:5000/distroless/python"


def test_a_one_character_repository_after_a_registry_is_refused_before_any_push() -> None:
    with pytest.raises(PushError, match=r"'127.0.0.1:5000/x': the repository name 'x' .* 2 characters.*"
                                        r"e.g. 127.0.0.1:5000/x/python"):
        push.check_target(Target(Path("l"), "127.0.0.1:5000/x", ("3.13",)))
    push.check_target(Target(Path("l"), "127.0.0.1:5000/xy", ("3.13",)))
    push.check_target(Target(Path("l"), "x", ("3.13",)))  # Docker Hub's library/x


@pytest.mark.parametrize("served, refused", [("", False), (DIGEST_A, False), ("sha256:" + "c" * 64, True)])
def test_an_immutable_tag_is_set_only_where_it_is_new_or_already_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: str, refused: bool,
) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    bin_directory, log = tmp_path / "bin", tmp_path / "calls"
    bin_directory.mkdir()
    answer = f"echo {served}" if served else "echo 'Error: GET ...: MANIFEST_UNKNOWN: manifest unknown' >&2; exit 1"
    (bin_directory / "crane").write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" = digest ] || exit 0\n{answer}\n')
    (bin_directory / "crane").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_directory}:{os.environ['PATH']}")
    target = Target(layout, REPOSITORY, ("3.13", "3.13.5-20261125!"))
    assert target.names == ("3.13", "3.13.5-20261125") and target.immutable == ("3.13.5-20261125",)
    if refused:
        with pytest.raises(PushError, match=r"3.13.5-20261125 is an immutable tag and already names sha256:c+, not "
                                            rf"this build's {DIGEST_A}.*nothing was pushed"):
            push.push(target)
        assert log.read_text().splitlines() == [f"digest {REPOSITORY}:3.13.5-20261125"]
    else:
        push.push(target)
        assert log.read_text().splitlines()[-2:] == [f"tag {REPOSITORY}@{DIGEST_A} 3.13",
                                                     f"tag {REPOSITORY}@{DIGEST_A} 3.13.5-20261125"]


def test_a_refused_push_names_the_registry_and_the_config_read(
    tmp_path: Path, crane: FakeCrane, monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    crane.fail_on("push")
    with pytest.raises(PushError) as error:
        push.push(Target(layout, REPOSITORY, ("3.13",)))
    assert (f"127.0.0.1:5000 asks for credentials and there are none for it in {tmp_path}/docker/config.json "
            "(it does not exist)") in str(error.value)
    assert str(error.value).endswith("no tag was moved.")


def assert_push_then_tags(calls: list[list[str]], layout: Path, digest: str, tags: list[str]) -> None:
    by_digest = f"{REPOSITORY}@{digest}"
    # Never --index: that would push a new index wrapping the layout's, under another digest.
    assert calls[0] == ["push", str(layout), by_digest]
    assert calls[1:] == [["tag", by_digest, tag] for tag in tags]


def test_push_by_digest_before_every_tag(tmp_path: Path, crane: FakeCrane, capsys: pytest.CaptureFixture[str]) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))

    assert push.push(Target(layout, REPOSITORY, ("3.13", "latest"))) == DIGEST_A

    assert_push_then_tags(crane.calls(), layout, DIGEST_A, ["3.13", "latest"])
    assert capsys.readouterr().out == f"pushed {REPOSITORY}@{DIGEST_A} as 3.13, latest, NOT signed\n"


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_push_passes_index_for_index_layouts(tmp_path: Path, crane: FakeCrane, media_type: str) -> None:
    layout = write_index(tmp_path / "index", descriptor(media_type, DIGEST_B))

    push.push(Target(layout, REPOSITORY, ("latest",)))

    assert_push_then_tags(crane.calls(), layout, DIGEST_B, ["latest"])


def test_push_without_tags_only_pushes(tmp_path: Path, crane: FakeCrane, capsys: pytest.CaptureFixture[str]) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    push.push(Target(layout, REPOSITORY, ()))
    assert crane.calls() == [["push", str(layout), f"{REPOSITORY}@{DIGEST_A}"]]
    assert capsys.readouterr().out == f"pushed {REPOSITORY}@{DIGEST_A}, NOT signed\n"


def test_failed_push_moves_no_tag(tmp_path: Path, crane: FakeCrane, capsys: pytest.CaptureFixture[str]) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    crane.fail_on("push")

    with pytest.raises(PushError) as error:
        push.push(Target(layout, REPOSITORY, ("3.13", "latest")))

    assert [call[0] for call in crane.calls()] == ["push"]
    message = str(error.value)
    assert REPOSITORY in message
    assert "UNAUTHORIZED" in message and "some progress" not in message
    assert "no tag was moved" in message
    assert "some progress" in capsys.readouterr().err  # crane's own output is passed on


def test_failed_tag_stops_the_remaining_tags(tmp_path: Path, crane: FakeCrane) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    crane.fail_on("tag")

    with pytest.raises(PushError, match=REPOSITORY):
        push.push(Target(layout, REPOSITORY, ("3.13", "latest")))

    assert [call[0] for call in crane.calls()] == ["push", "tag"]


def test_invalid_target_never_calls_crane(tmp_path: Path, crane: FakeCrane) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    with pytest.raises(PushError):
        push.push(Target(layout, REPOSITORY, ("ok", ".bad")))
    with pytest.raises(PushError):
        push.push(Target(tmp_path / "missing", REPOSITORY, ("ok",)))
    assert crane.calls() == []


def test_main_pushes_every_image(
    tmp_path: Path, crane: FakeCrane, monkeypatch: pytest.MonkeyPatch, build_image, make_layer
) -> None:
    monkeypatch.delenv("DISTROLESS_REPOSITORY", raising=False)
    image = build_image("image", "--layer", str(make_layer("app.tar.gz", {"app/main.py": b"pass\n"})))
    index = tmp_path / "index"
    assert build_layout.main(["index", "--output", str(index), "--image", str(image)]) == 0
    image_digest = push.layout_digest(image)
    index_digest = push.layout_digest(index)

    status = push.main([
        "--image", f"{image}=python:3.13-amd64", "--image", f"{index}=python:3.13,latest",
        "--repository", "127.0.0.1:5000/distroless",
    ])

    assert status == 0
    calls = crane.calls()
    assert_push_then_tags(calls[:2], image, image_digest, ["3.13-amd64"])
    assert_push_then_tags(calls[2:], index, index_digest, ["3.13", "latest"])


def test_main_without_a_key_says_it_does_not_sign(
    tmp_path: Path, crane: FakeCrane, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSIGN_KEY", raising=False)
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    assert push.main(["--layout", str(layout), "--default-repository", REPOSITORY, "--default-tag", "latest"]) == 0
    assert "NOTE: no signing key (--key or COSIGN_KEY)" in capsys.readouterr().err


@pytest.mark.parametrize("password", [None, "set"])
def test_main_with_an_unusable_key_fails_before_any_push(
    tmp_path: Path, crane: FakeCrane, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    password: str | None,
) -> None:
    """A missing key file, or a key without COSIGN_PASSWORD, stops the push before crane runs at all."""
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    key = tmp_path / "cosign.key"
    if password is None:
        key.write_text("not checked before the password")
        monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("COSIGN_PASSWORD", password)
    status = push.main(["--layout", str(layout), "--default-repository", REPOSITORY, "--default-tag", "latest",
                        "--key", str(key)])
    assert status == 1
    assert crane.calls() == []
    error = capsys.readouterr().err
    assert ("COSIGN_PASSWORD is not set" if password is None else "does not exist") in error
    assert "no image was pushed" in error


def test_predicates_of_verify_attestation_output() -> None:
    statement = {"predicateType": push.PREDICATE_TYPES["spdxjson"], "predicate": {"spdxVersion": "SPDX-2.3"}}
    other = {"predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}}
    lines = [json.dumps({"payload": push.base64.b64encode(json.dumps(document).encode()).decode()})
             for document in (statement, other)]
    assert push.predicates("\n".join(["Verification for x --", *lines]), "spdxjson") == [{"spdxVersion": "SPDX-2.3"}]


def test_main_reports_a_failed_push(
    tmp_path: Path, crane: FakeCrane, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = write_index(tmp_path / "image", descriptor(IMAGE_MANIFEST, DIGEST_A))
    crane.fail_on("push")

    status = push.main(["--layout", str(layout), "--default-repository", REPOSITORY, "--default-tag", "latest"])

    assert status == 1
    assert [call[0] for call in crane.calls()] == ["push"]
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("push: error: ")]
    assert len(error_lines) == 1 and REPOSITORY in error_lines[0]


@pytest.mark.parametrize("argv", [
    [],
    ["--layout", "x", "--image", "y=python:t"],
    ["--image", "not-a-spec"],
])
def test_main_usage_errors(argv: list[str], crane: FakeCrane) -> None:
    with pytest.raises(SystemExit) as exit_info:
        push.main(argv)
    assert exit_info.value.code == 2
    assert crane.calls() == []


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
