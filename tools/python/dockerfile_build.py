"""Testing an image built by `docker build` from a Dockerfile on these images, from any package.

The ready-made test is the `dockerfile_test` rule (//tools/python:defs.bzl; its tool is dockerfile_test.py),
which examples/hello_service uses. This holds what such a test needs besides its own checks, for that rule
and for a py_test of your own (`deps = ["//tools/python:dockerfile_build"]`): the build context's wheels/
(exactly the locked wheels, each checked against the lock's sha256, so pip --require-hashes accepts them
with no network), an engine (DOCKER_HOST's, e.g. `tools/bazel run //tools/oci:engine`'s, else a private
one), and the size of the layers an image adds.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tools.oci.structure_test import private_engine
from tools.python.requirements_lock_reader import parse_lock
from tools.python.wheel_tags import normalize_name


class ContextError(Exception):
    """The build context cannot be prepared: a wheel the lock does not hash, or a requirement without a wheel."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_directory(lock: Path, wheels: list[Path], output: Path, machine: str = "x86_64") -> list[str]:
    """Copies `wheels` into `output` after checking each against the lock; returns their names, sorted.

    Every wheel must belong to a project the lock has for `machine` (entries with a platform_machine marker
    for another machine are pip's to skip) and have one of its sha256 hashes, and every such project must
    have exactly one wheel: the directory then holds exactly what pip --require-hashes will accept.
    """
    requirements = {
        requirement.project: requirement for requirement in parse_lock(lock.read_text(), str(lock))
        if not requirement.machines or machine in requirement.machines
    }
    found: dict[str, Path] = {}
    for wheel in wheels:
        if not wheel.name.endswith(".whl"):
            raise ContextError(f"{wheel}: not a wheel")
        project = normalize_name(wheel.name.split("-")[0])
        requirement = requirements.get(project)
        if requirement is None:
            raise ContextError(f"{wheel.name}: {project} is not in {lock}")
        digest = sha256_file(wheel)
        if digest not in requirement.hashes:
            raise ContextError(f"{wheel.name}: its sha256 is {digest}, which {lock} does not list for {requirement.name}")
        if project in found:
            raise ContextError(f"{requirement.name}: two wheels ({found[project].name}, {wheel.name}); expected one")
        found[project] = wheel
    missing = sorted(requirement.name for project, requirement in requirements.items() if project not in found)
    if missing:
        raise ContextError(f"no wheel for {', '.join(missing)} (locked in {lock})")
    output.mkdir(parents=True)
    for wheel in found.values():
        shutil.copyfile(wheel, output / wheel.name)
    return sorted(wheel.name for wheel in found.values())


@dataclass
class Docker:
    host: str

    def run(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        return self.execute(["docker", *args], timeout, env)

    def execute(self, command: list[str], timeout: float = 300, env: dict[str, str] | None = None) -> str:
        """Runs a docker client command (docker, or an oci_load script) against this engine."""
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "DOCKER_HOST": self.host, **(env or {})},
        )
        if result.returncode != 0:
            # The first two words name the command (a script given with -c would drown the message).
            raise AssertionError(f"{' '.join(command[:2])} ... exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout


@contextlib.contextmanager
def engine() -> Iterator[Docker]:
    if os.environ.get("DOCKER_HOST"):
        yield Docker(os.environ["DOCKER_HOST"])
        return
    with private_engine() as host:
        yield Docker(host)


def added_layers_gzip(docker: Docker, image: str, base_layers: int, directory: Path) -> int:
    """The gzip -6 size of the layers `image` has on top of its base's first `base_layers` layers."""
    archive = directory / "saved.tar"
    docker.run("save", "--output", str(archive), image)
    total = 0
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"][base_layers:]:
            data = tar.extractfile(name).read()  # type: ignore[union-attr]
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            total += len(gzip.compress(data, compresslevel=6, mtime=0))
    return total
