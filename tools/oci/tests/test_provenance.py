"""Tests for tools/oci/provenance.py: the SLSA v1 predicate's fields, its determinism, and its input checks."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from tools.oci import provenance
from tools.oci.provenance import ProvenanceError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PINS = "suite forky\n# Bazel\nbazel-bootstrap=7.7.1+ds-8+b1\ncrane=0.20.7+ds1-5\n"


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "source": tmp_path / "source.json",
        "packages": tmp_path / "build_root.packages",
        "lock": tmp_path / "lock.json",
        "manifest": tmp_path / "manifest.yaml",
    }
    files["source"].write_text(json.dumps({"commit": COMMIT, "unknown_because": ""}))
    files["packages"].write_text(PINS)
    files["lock"].write_text('{"packages": []}\n')
    files["manifest"].write_text("packages: []\n")
    return files


def run(inputs: dict[str, Path], tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out.slsa.json"
    code = provenance.main(["--target", "//python:3.13_amd64", "--source", str(inputs["source"]),
                            "--build-root-packages", str(inputs["packages"]), "--output", str(out), *extra,
                            str(inputs["lock"]), str(inputs["manifest"])])
    return code, out


def test_predicate_records_target_command_source_dependencies_and_builder(inputs, tmp_path: Path) -> None:
    code, out = run(inputs, tmp_path)
    assert code == 0
    document = json.loads(out.read_text())
    assert provenance.problems(document) == []
    definition = document["buildDefinition"]
    assert definition["buildType"] == provenance.BUILD_TYPE
    assert definition["externalParameters"] == {
        "target": "//python:3.13_amd64",
        "command": "tools/bazel build //python:3.13_amd64",
        "source": {"commit": COMMIT},
    }
    digests = {item["name"]: item["digest"] for item in definition["resolvedDependencies"]}
    assert digests == {
        "source": {"gitCommit": COMMIT},
        inputs["lock"].as_posix(): {"sha256": hashlib.sha256(inputs["lock"].read_bytes()).hexdigest()},
        inputs["manifest"].as_posix(): {"sha256": hashlib.sha256(inputs["manifest"].read_bytes()).hexdigest()},
    }
    builder = document["runDetails"]["builder"]
    assert builder["id"] == provenance.BUILDER_ID
    assert builder["version"] == {"bazel": "7.7.1", "bazel-bootstrap": "7.7.1+ds-8+b1"}
    assert builder["builderDependencies"] == [{"name": inputs["packages"].as_posix(),
                                               "digest": {"sha256": hashlib.sha256(PINS.encode()).hexdigest()}}]
    assert "metadata" not in document["runDetails"], "a time was written without --stamp"


def test_same_inputs_give_the_same_bytes(inputs, tmp_path: Path) -> None:
    _, out = run(inputs, tmp_path)
    first = out.read_bytes()
    out.unlink()
    _, out = run(inputs, tmp_path)
    assert out.read_bytes() == first


def test_a_changed_lock_changes_its_digest(inputs, tmp_path: Path) -> None:
    _, out = run(inputs, tmp_path)
    before = out.read_text()
    inputs["lock"].write_text('{"packages": ["python3.13"]}\n')
    _, out = run(inputs, tmp_path)
    assert out.read_text() != before


def test_stamping_records_the_start_time_and_the_flag(inputs, tmp_path: Path) -> None:
    status = tmp_path / "volatile-status.txt"
    status.write_text("BUILD_TIMESTAMP 1795766400\nOTHER x\n")
    code, out = run(inputs, tmp_path, "--volatile-status", str(status))
    assert code == 0
    document = json.loads(out.read_text())
    assert document["runDetails"]["metadata"] == {"startedOn": "2026-11-27T08:00:00Z"}
    assert document["buildDefinition"]["externalParameters"]["command"] == "tools/bazel build --stamp //python:3.13_amd64"


def test_an_unknown_commit_is_recorded_as_unknown_with_its_reason(inputs, tmp_path: Path) -> None:
    inputs["source"].write_text(json.dumps({"commit": "", "unknown_because": "the checkout has no .git"}))
    code, out = run(inputs, tmp_path)
    assert code == 0
    document = json.loads(out.read_text())
    assert document["buildDefinition"]["externalParameters"]["source"] == {
        "commit": "unknown", "unknownBecause": "the checkout has no .git"}
    assert "source" not in [item["name"] for item in document["buildDefinition"]["resolvedDependencies"]]
    assert provenance.problems(document) == []


def test_source_url_names_the_repository(inputs, tmp_path: Path) -> None:
    code, out = run(inputs, tmp_path, "--source-url", "https://example.invalid/distroless-python")
    assert code == 0
    source = json.loads(out.read_text())["buildDefinition"]["resolvedDependencies"][0]
    assert source["uri"] == f"git+https://example.invalid/distroless-python@{COMMIT}"


@pytest.mark.parametrize("source, message", [
    ({"commit": "main", "unknown_because": ""}, "is not a git commit id"),
    ({"commit": COMMIT, "unknown_because": "both"}, "either a commit or why"),
    ({"commit": "", "unknown_because": ""}, "either a commit or why"),
    ({"sha": COMMIT}, "is not a source description"),
])
def test_bad_source_descriptions_fail_clearly(inputs, tmp_path: Path, capsys, source, message: str) -> None:
    inputs["source"].write_text(json.dumps(source))
    code, out = run(inputs, tmp_path)
    assert code == 1 and not out.exists()
    error = capsys.readouterr().err
    assert error.startswith("provenance: error: ") and message in error and error.count("\n") == 1


def test_missing_bazel_pin_and_missing_dependency_fail_clearly(inputs, tmp_path: Path, capsys) -> None:
    inputs["packages"].write_text("suite forky\ncrane=0.20.7+ds1-5\n")
    assert run(inputs, tmp_path)[0] == 1
    assert "pins no bazel-bootstrap" in capsys.readouterr().err
    inputs["packages"].write_text(PINS)
    inputs["lock"].unlink()
    code, out = run(inputs, tmp_path)
    assert code == 1 and not out.exists()
    assert "cannot read" in capsys.readouterr().err


def test_a_bad_label_is_refused(inputs) -> None:
    with pytest.raises(ProvenanceError, match="not an absolute label"):
        provenance.predicate("python:3.13", COMMIT, "", [inputs["lock"]], inputs["packages"])


def test_the_project_pins_bazel_as_bazelversion_says() -> None:
    """The builder's version comes from the build root's pin; bazelisk's .bazelversion must name the same."""
    upstream, debian_version = provenance.bazel_version(Path("tools/build_root.packages"))
    assert upstream == Path(".bazelversion").read_text().strip(), debian_version


@pytest.mark.parametrize("path, message", [
    (("buildDefinition", "buildType"), "buildDefinition.buildType is missing"),
    (("buildDefinition", "externalParameters"), "externalParameters is missing"),
    (("runDetails", "builder", "id"), "runDetails.builder.id is missing"),
    (("runDetails",), "runDetails is missing"),
])
def test_problems_names_each_missing_required_field(inputs, path: tuple[str, ...], message: str) -> None:
    document = provenance.predicate("//python:3.13_amd64", COMMIT, "", [inputs["lock"]], inputs["packages"])
    broken = copy.deepcopy(document)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert any(message in problem for problem in provenance.problems(broken))


def test_problems_refuses_a_descriptor_without_uri_digest_or_content(inputs) -> None:
    document = provenance.predicate("//python:3.13_amd64", COMMIT, "", [inputs["lock"]], inputs["packages"])
    document["buildDefinition"]["resolvedDependencies"].append({"name": "nothing"})
    assert provenance.problems(document) == ["resource descriptor {'name': 'nothing'} has none of uri, digest, content"]
