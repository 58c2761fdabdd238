"""The test behind `dockerfile_test`: builds a Dockerfile with `docker build` in an engine and structure-tests the image.

From the runfiles (the rule's launcher gives every path): the build context is assembled in the test's
temporary directory (each `--file SRC=DEST`, plus, with `--lock`, a wheel directory holding exactly the
locked wheels, each checked against the lock's sha256, so pip --require-hashes installs them with no
network); the engine is DOCKER_HOST's or the tests' private dockerd (dockerfile_build.engine); every
`--load` script (an oci_load target, e.g. //python:3.13-dev_load) loads its image there; `docker build
--network=none` (the classic builder) builds the image; container-structure-test runs every `--config`
against it in the same engine. A shared engine keeps no image of the test's. Figures (build time, size over
the last FROM image) go to the test log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tools import cli
from tools.oci.structure_test import EngineError
from tools.python.dockerfile_build import ContextError, Docker, added_layers_gzip, engine, wheel_directory
from tools.python.requirements_lock_reader import LockError


def image_tag(target: str) -> str:
    """A name unique to the test target, so tests sharing one engine never build over each other's image."""
    name = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-") or "image"
    return f"dockerfile-test.invalid/{name}:latest"


def build_context(directory: Path, dockerfile: Path, files: list[tuple[Path, str]], lock: Path | None,
                  wheels: list[Path], wheels_dir: str, machine: str) -> Path:
    directory.mkdir(parents=True)
    shutil.copyfile(dockerfile, directory / "Dockerfile")
    for source, destination in files:
        target = directory / destination
        if target.resolve() != target.absolute() or ".." in Path(destination).parts:
            raise ContextError(f"{destination}: a build context path must stay inside the context")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    if lock is not None:
        wheel_directory(lock, wheels, directory / wheels_dir, machine)
    elif wheels:
        raise ContextError("wheels without a lock: give the lock they are checked against (dockerfile_test's `lock`)")
    return directory


def last_base(dockerfile: Path, build_args: dict[str, str]) -> str:
    """The image the last stage starts FROM (ARG defaults and build args filled in), to measure what the build adds."""
    values: dict[str, str] = {}
    base = ""
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["ARG"] and len(words) > 1:
            name, _, default = words[1].partition("=")
            values[name] = build_args.get(name, default)
        elif words[:1] == ["FROM"] and len(words) > 1:
            base = re.sub(r"\$\{?(\w+)\}?", lambda match: values.get(match[1], match[0]), words[1])
    return base


def test(args: argparse.Namespace, scratch: Path) -> int:
    build_args = dict(item.split("=", 1) for item in args.build_arg)
    files = [(Path(source), destination) for source, _, destination in (item.partition("=") for item in args.file)]
    context = build_context(scratch / "context", args.dockerfile, files, args.lock, args.wheel, args.wheels_dir, args.machine)
    print("dockerfile_test: build context:", sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()), flush=True)
    tag = image_tag(os.environ.get("TEST_TARGET", args.dockerfile.parent.name))
    with engine() as docker:
        for script in args.load:
            print(docker.execute([str(script)]).strip(), flush=True)
        started = time.monotonic()
        build = ["build", "--network=none", "--tag", tag, *(f"--build-arg={item}" for item in args.build_arg), str(context)]
        docker.run(*build, timeout=1200, env={"DOCKER_BUILDKIT": "0"})
        seconds = time.monotonic() - started
        try:
            report(docker, tag, last_base(args.dockerfile, build_args), seconds, scratch)
            command = [args.structure_test, "test", "--driver", "docker", "--image", tag, "--no-color"]
            for config in args.config:
                command += ["--config", config]
            return subprocess.run(command, env={**os.environ, "DOCKER_HOST": docker.host}, check=False).returncode
        finally:
            if os.environ.get("DOCKER_HOST"):  # a shared engine keeps nothing of the test's (a private one goes)
                subprocess.run(["docker", "image", "rm", "--force", tag], env={**os.environ, "DOCKER_HOST": docker.host},
                               capture_output=True, check=False)


def report(docker: Docker, tag: str, base: str, seconds: float, scratch: Path) -> None:
    image = json.loads(docker.run("image", "inspect", tag))[0]
    line = f"FIGURES: docker build {seconds:.1f} s; image {image['Size'] / 1e6:.1f} MB uncompressed"
    if base:
        inspected = subprocess.run(["docker", "image", "inspect", base], capture_output=True, text=True, check=False,
                                   env={**os.environ, "DOCKER_HOST": docker.host})
        if inspected.returncode == 0:
            base_image = json.loads(inspected.stdout)[0]
            layers = len(base_image["RootFS"]["Layers"])
            added = added_layers_gzip(docker, tag, layers, scratch)
            line += (f"; the build adds {(image['Size'] - base_image['Size']) / 1e3:.1f} kB uncompressed, {added / 1e3:.1f} kB "
                     f"gzip -6 ({len(image['RootFS']['Layers']) - layers} layers) over {base}")
    print(line, flush=True)


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM (Bazel's on timeout) unwinds like Ctrl-C, so the private engine is stopped."""
    raise SystemExit(128 + signum)


@cli.tool("dockerfile_test", AssertionError, ContextError, EngineError, LockError, OSError, subprocess.TimeoutExpired)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=Path, required=True)
    parser.add_argument("--file", action="append", default=[], help="SRC=DEST: a file of the build context")
    parser.add_argument("--lock", type=Path, help="the requirements lock the wheels are checked against")
    parser.add_argument("--wheel", type=Path, action="append", default=[], help="a wheel for the context's wheel directory")
    parser.add_argument("--wheels-dir", default="wheels", help="the wheel directory, inside the context")
    parser.add_argument("--machine", default="x86_64", help="the machine the lock's entries are taken for")
    parser.add_argument("--load", type=Path, action="append", default=[], help="an oci_load script, run before the build")
    parser.add_argument("--build-arg", action="append", default=[], help="NAME=VALUE, for docker build")
    parser.add_argument("--config", action="append", required=True, help="a structure test config for the built image")
    parser.add_argument("--structure-test", required=True, help="the container-structure-test executable")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with tempfile.TemporaryDirectory(prefix="dockerfile-test-", dir=os.environ.get("TEST_TMPDIR")) as scratch:
        return test(args, Path(scratch))


if __name__ == "__main__":
    raise SystemExit(main())
