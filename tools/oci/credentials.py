"""Where crane and cosign find a registry's credentials, found the same way, to say why a registry refused.

crane and cosign (go-containerregistry's default keychain) read the docker config: `$DOCKER_CONFIG/config.json`,
else `~/.docker/config.json`. For a registry they use its `credHelpers` entry (the program
`docker-credential-NAME`, found on PATH), else the `credsStore` helper, else its `auths` entry, else nothing
(anonymous). This module repeats that lookup only to explain a failure; it never hands credentials to anyone.

Standard library only: it runs with the machine's python3, beside the user's helpers (tools/build_root.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

# Docker's own names for Docker Hub in a docker config (the registry a reference without a host means, and the
# auths key `docker login` writes for it): protocol constants of the config format, not a place fetched from.
DOCKER_HUB = "index.docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_ALIASES = ("docker.io", "registry-1.docker.io")
REFUSED = re.compile(r"\b(401|403)\b|UNAUTHORIZED|DENIED|unauthorized|denied")
# go-containerregistry's words when a helper program fails: "error getting credentials - err: exit status 1,
# out: `MESSAGE`".
HELPER_FAILED = re.compile(r"error getting credentials - err: (?P<error>[^,]*)(?:, out: `(?P<out>.*?)`)?")


@dataclass(frozen=True)
class Source:
    """What the docker config offers for one registry."""

    registry: str
    config: Path  # the config file that was read (or would have been)
    exists: bool
    helper: str = ""  # NAME of docker-credential-NAME, when a helper answers for the registry
    origin: str = ""  # "credHelpers", "credsStore" or "auths"; "" when the config holds nothing for it

    def describe(self) -> str:
        if self.helper:
            return f"docker-credential-{self.helper} (its {self.origin} in {self.config})"
        if self.origin:
            return f"the auths entry for {self.registry} in {self.config}"
        return f"nothing in {self.config}" + ("" if self.exists else ", which does not exist")


def config_file(environ: Mapping[str, str]) -> Path:
    directory = environ.get("DOCKER_CONFIG") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".docker")
    return Path(directory) / "config.json"


def registry_of(repository: str) -> str:
    """The registry host of a repository reference, as docker names it (Docker Hub for a bare name)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB if first in DOCKER_HUB_ALIASES else first
    return DOCKER_HUB


def hostname(key: str) -> str:
    """An auths or credHelpers key as a host name: docker strips a scheme and a path the same way."""
    host = re.sub(r"^https?://", "", key).split("/", 1)[0]
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def lookup(repository: str, environ: Mapping[str, str] = os.environ) -> Source:
    registry = registry_of(repository)
    path = config_file(environ)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return Source(registry, path, exists=False)
    except (OSError, ValueError):
        return Source(registry, path, exists=True)
    helpers = {hostname(key): value for key, value in (config.get("credHelpers") or {}).items()}
    if helpers.get(registry):
        return Source(registry, path, True, helpers[registry], "credHelpers")
    if config.get("credsStore"):
        return Source(registry, path, True, config["credsStore"], "credsStore")
    if any(hostname(key) == registry for key in (config.get("auths") or {})):
        return Source(registry, path, True, origin="auths")
    return Source(registry, path, True)


def helper_answer(source: Source, timeout: float = 60) -> str:
    """'' when the source's helper returns credentials for the registry, else what it said instead."""
    server = DOCKER_HUB_KEY if source.registry == DOCKER_HUB else source.registry
    try:
        result = subprocess.run([f"docker-credential-{source.helper}", "get"], input=server, capture_output=True,
                                text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode == 0:
        return ""
    return (result.stdout.strip() or result.stderr.strip() or f"exit status {result.returncode}").splitlines()[-1]


def explain(repository: str, message: str, environ: Mapping[str, str] = os.environ) -> str:
    """What a failed crane or cosign call against `repository` means, and the fix, from its last message."""
    source = lookup(repository, environ)
    registry = source.registry
    login = (f"log in with `crane auth login {registry} -u USER` or `docker login {registry}` (they write "
             f"{source.config}), or set DOCKER_CONFIG to the directory whose config.json holds the login")
    failed = HELPER_FAILED.search(message)
    if failed:
        said = (failed.group("out") or failed.group("error")).strip()
        if "executable file not found" in message:
            return (f"{source.config} names the credential helper docker-credential-{source.helper or '?'} "
                    f"({source.origin or 'credHelpers'}) for {registry}, which is not on PATH; install it, or remove "
                    "that entry and log in another way")
        return (f"the credential helper docker-credential-{source.helper or '?'} ({source.origin or 'credHelpers'} "
                f"in {source.config}) failed for {registry}: {said}; fix or log in with that helper and try again")
    if not REFUSED.search(message):
        return (f"Check that {registry} is reachable and that the repository name is right (credentials for it: "
                f"{source.describe()})")
    if source.helper:
        answer = helper_answer(source)
        if answer:
            return (f"{registry} asks for credentials and docker-credential-{source.helper} ({source.origin} in "
                    f"{source.config}) has none for it ({answer}); {login}")
        return (f"{registry} refused the credentials from docker-credential-{source.helper} ({source.origin} in "
                f"{source.config}); check the account's password or token and its right to push there")
    if source.origin:
        return (f"{registry} refused the credentials of the auths entry for it in {source.config} (wrong "
                f"password or token, or no right to this repository); {login}")
    where = source.config if source.exists else f"{source.config} (it does not exist)"
    return f"{registry} asks for credentials and there are none for it in {where}; {login}"
