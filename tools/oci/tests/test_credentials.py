"""tools/oci/credentials.py: the docker config lookup crane does, and what a refusal is said to mean."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tools.oci import credentials

REFUSED = "Error: HEAD http://r/v2/x/manifests/sha256:1: unexpected status code 401 Unauthorized"


def write_config(directory: Path, config: dict) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(directory), "HOME": "/nonexistent"}


def write_helper(directory: Path, name: str, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    helper = directory / f"docker-credential-{name}"
    helper.write_text("#!/bin/sh\n" + body)
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}:/usr/bin:/bin")


@pytest.mark.parametrize("repository, registry", [
    ("127.0.0.1:5000/distroless/python", "127.0.0.1:5000"),
    ("registry.invalid/team/python", "registry.invalid"),
    ("localhost/x/y", "localhost"),
    ("team/python", "index.docker.io"),
    ("python", "index.docker.io"),
])
def test_registry_of_a_repository(repository: str, registry: str) -> None:
    assert credentials.registry_of(repository) == registry


def test_config_file_is_docker_config_else_home(tmp_path: Path) -> None:
    assert credentials.config_file({"DOCKER_CONFIG": "/d", "HOME": "/h"}) == Path("/d/config.json")
    assert credentials.config_file({"HOME": "/h"}) == Path("/h/.docker/config.json")


def test_lookup_prefers_cred_helpers_then_creds_store_then_auths(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"https://a.invalid": {"auth": "eDp5"}, credentials.DOCKER_HUB_KEY: {}},
                                  "credHelpers": {"h.invalid:5000": "gcloud"}})
    assert credentials.lookup("h.invalid:5000/p/python", env).helper == "gcloud"
    assert credentials.lookup("a.invalid/p/python", env).origin == "auths"
    assert credentials.lookup("team/python", env).origin == "auths"  # Docker Hub, under docker's own key
    assert credentials.lookup("b.invalid/p/python", env).origin == ""
    env = write_config(tmp_path, {"auths": {"a.invalid": {}}, "credsStore": "desktop",
                                  "credHelpers": {"h.invalid:5000": "gcloud"}})
    assert (credentials.lookup("a.invalid/p/python", env).helper, credentials.lookup("a.invalid/p/python", env).origin) \
        == ("desktop", "credsStore")


def test_no_credentials_names_the_registry_and_the_missing_config(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "nowhere")}
    message = credentials.explain("127.0.0.1:5000/d/python", REFUSED, env)
    assert message.startswith(f"127.0.0.1:5000 asks for credentials and there are none for it in {tmp_path}/nowhere/"
                              "config.json (it does not exist); log in with `crane auth login 127.0.0.1:5000 -u USER`")


def test_no_entry_for_the_registry_names_the_config_that_was_read(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"other.example:1": {"auth": "eDp5"}}})
    message = credentials.explain("127.0.0.1:5000/d/python", REFUSED, env)
    assert f"there are none for it in {tmp_path}/config.json; log in" in message
    assert "does not exist" not in message


def test_refused_auths_entry(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"127.0.0.1:5000": {"auth": "eDp5"}}})
    message = credentials.explain("127.0.0.1:5000/d/python", "Error: ... 403 Forbidden", env)
    assert message.startswith(f"127.0.0.1:5000 refused the credentials of the auths entry for it in {tmp_path}/config.json")


def test_helper_that_fails_is_named_with_its_message(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"credHelpers": {"127.0.0.1:5000": "vault"}})
    crane_said = "Error: error getting credentials - err: exit status 1, out: `vault is sealed`"
    message = credentials.explain("127.0.0.1:5000/d/python", crane_said, env)
    assert message.startswith(f"the credential helper docker-credential-vault (credHelpers in {tmp_path}/config.json) "
                              "failed for 127.0.0.1:5000: vault is sealed;")


def test_helper_not_on_path(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"credsStore": "missing"})
    crane_said = ('Error: error getting credentials - err: exec: "docker-credential-missing": executable file not '
                  'found in $PATH, out: ``')
    message = credentials.explain("127.0.0.1:5000/d/python", crane_said, env)
    assert message.startswith(f"{tmp_path}/config.json names the credential helper docker-credential-missing "
                              "(credsStore) for 127.0.0.1:5000, which is not on PATH")


def test_helper_without_credentials_for_the_registry_is_asked_and_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_helper(tmp_path / "bin", "empty", 'cat >/dev/null; echo "credentials not found in native keychain"; exit 1\n',
                 monkeypatch)
    env = write_config(tmp_path / "docker", {"credHelpers": {"127.0.0.1:5000": "empty"}})
    message = credentials.explain("127.0.0.1:5000/d/python", REFUSED, env)
    assert message.startswith("127.0.0.1:5000 asks for credentials and docker-credential-empty (credHelpers in "
                              f"{tmp_path}/docker/config.json) has none for it (credentials not found in native "
                              "keychain)")


def test_helper_whose_credentials_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = tmp_path / "asked"
    write_helper(tmp_path / "bin", "ok", f'cat > {asked}; echo \'{{"Username":"u","Secret":"s"}}\'\n', monkeypatch)
    env = write_config(tmp_path / "docker", {"credsStore": "ok"})
    message = credentials.explain("127.0.0.1:5000/d/python", REFUSED, env)
    assert message.startswith("127.0.0.1:5000 refused the credentials from docker-credential-ok (credsStore in")
    assert asked.read_text() == "127.0.0.1:5000"


def test_other_failures_name_reachability_and_what_the_config_holds(tmp_path: Path) -> None:
    env = write_config(tmp_path, {"auths": {"127.0.0.1:5000": {}}})
    message = credentials.explain("127.0.0.1:5000/d/python", "Error: dial tcp 127.0.0.1:5000: connection refused", env)
    assert message.startswith("Check that 127.0.0.1:5000 is reachable")
    assert f"the auths entry for 127.0.0.1:5000 in {tmp_path}/config.json" in message


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
