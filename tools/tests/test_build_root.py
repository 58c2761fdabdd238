"""Tests of tools/bazel's own logic: package list, mirror detection, cache key, errors, namespace command."""

from __future__ import annotations

import fcntl
import http.server
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tools import build_root
from tools.build_root import AptSource, BuildRootError

DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://vendor.invalid/apt
Suites: stable
Components: main
Signed-By: /usr/share/keyrings/vendor.gpg
"""


def test_deb822_sources_give_main_and_security_mirrors() -> None:
    mirrors = build_root.find_mirrors({}, build_root.parse_deb822_sources(DEB822))
    assert mirrors == {"DEBIAN_MIRROR": "http://mirror.invalid/debian",
                       "DEBIAN_SECURITY_MIRROR": "http://mirror.invalid/debian-security"}


def test_one_line_sources_are_read_and_third_party_ones_ignored() -> None:
    text = ("deb https://vendor.invalid/apt stable main\n"
            "# deb http://commented.invalid/debian bookworm main\n"
            "deb [arch=amd64] http://mirror.invalid/debian/ bookworm main\n")
    mirrors = build_root.find_mirrors({}, build_root.parse_one_line_sources(text))
    assert mirrors["DEBIAN_MIRROR"] == "http://mirror.invalid/debian"
    # Without a security source, the conventional sibling archive is assumed.
    assert mirrors["DEBIAN_SECURITY_MIRROR"] == "http://mirror.invalid/debian-security"


def test_disabled_deb822_stanza_is_ignored() -> None:
    text = DEB822.replace("Types: deb\nURIs: http://mirror.invalid/debian\n",
                          "Types: deb\nEnabled: no\nURIs: http://mirror.invalid/debian\n")
    with pytest.raises(BuildRootError, match="No Debian mirror"):
        build_root.find_mirrors({}, build_root.parse_deb822_sources(text))


def test_environment_overrides_apt_sources() -> None:
    sources = build_root.parse_deb822_sources(DEB822)
    mirrors = build_root.find_mirrors({"DEBIAN_MIRROR": "http://other.invalid/debian/"}, sources)
    assert mirrors == {"DEBIAN_MIRROR": "http://other.invalid/debian",
                       "DEBIAN_SECURITY_MIRROR": "http://other.invalid/debian-security"}


def test_no_debian_source_is_a_clear_error() -> None:
    vendor_only = [AptSource(("https://vendor.invalid/apt",), ("stable",), "/usr/share/keyrings/vendor.gpg")]
    with pytest.raises(BuildRootError, match="Set DEBIAN_MIRROR"):
        build_root.find_mirrors({}, vendor_only)


def test_read_apt_sources_reads_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://a.invalid/debian bullseye main\n")
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "ignored.disabled").write_text("deb http://b.invalid/debian sid main\n")
    sources = build_root.read_apt_sources([str(tmp_path / "sources.list"), str(tmp_path / "sources.list.d")])
    assert [s.uris[0] for s in sources] == ["http://a.invalid/debian", "http://mirror.invalid/debian",
                                            "http://mirror.invalid/debian-security", "https://vendor.invalid/apt"]


def test_project_package_list_is_valid_and_pins_every_package() -> None:
    packages = build_root.read_package_list()
    names = {p.split("=")[0] for p in packages.packages}
    assert {"bazel-bootstrap", "python3", "crane", "docker.io", "docker-registry", "mount"} <= names
    assert all("=" in p for p in packages.packages)


def test_cache_key_follows_the_package_list(tmp_path: Path) -> None:
    listing = tmp_path / "build_root.packages"
    listing.write_text("suite forky\nbazel-bootstrap=7.7.1+ds-8+b1\n")
    first = build_root.cache_layout({"HOME": "/home/u"}, build_root.read_package_list(listing))
    again = build_root.cache_layout({"HOME": "/home/u"}, build_root.read_package_list(listing))
    listing.write_text("suite forky\nbazel-bootstrap=7.7.1+ds-8+b1\ncrane=0.20.7+ds1-5\n")
    edited = build_root.cache_layout({"HOME": "/home/u"}, build_root.read_package_list(listing))
    assert first.root == again.root
    assert first.root != edited.root
    assert first.root.parent == Path("/home/u/.cache/distroless-python")


def make_root(home: Path, key: str, age_days: int) -> build_root.CacheLayout:
    layout = build_root.CacheLayout(home, key)
    for directory in (layout.root, layout.output_user_root):
        (directory / "etc").mkdir(parents=True)
    layout.lock_file.touch()
    stamp = 1_000_000_000 - age_days * 86400
    os.utime(layout.lock_file, (stamp, stamp))
    return layout


def test_stale_roots_are_removed_beyond_the_newest_ones(tmp_path: Path) -> None:
    current = make_root(tmp_path, "current", 0)
    recent = make_root(tmp_path, "recent", 1)
    old = make_root(tmp_path, "old", 30)
    older = make_root(tmp_path, "older", 60)
    (tmp_path / "repository-cache").mkdir()
    build_root.remove_stale_roots(current, keep=2)
    assert current.root.is_dir() and recent.root.is_dir() and recent.output_user_root.is_dir()
    for stale in (old, older):
        assert not stale.root.exists() and not stale.output_user_root.exists() and not stale.lock_file.exists()
    assert (tmp_path / "repository-cache").is_dir()  # shared by all roots, never removed


def test_a_root_whose_bazel_server_runs_is_kept(tmp_path: Path) -> None:
    old = build_root.CacheLayout(tmp_path, "old")
    for layout in (old, build_root.CacheLayout(tmp_path, "mid"), build_root.CacheLayout(tmp_path, "new")):
        layout.root.mkdir()
        layout.lock_file.touch()
        os.utime(layout.lock_file, (1, {"old": 1, "mid": 2, "new": 3}[layout.key]))
    server = old.output_user_root / "base" / "server"
    server.mkdir(parents=True)
    (server / "server.pid.txt").write_text(str(os.getpid()))  # a live process stands in for its server
    build_root.remove_stale_roots(build_root.CacheLayout(tmp_path, "new"), keep=2)
    assert old.root.is_dir()
    (server / "server.pid.txt").write_text("999999999")
    build_root.remove_stale_roots(build_root.CacheLayout(tmp_path, "new"), keep=2)
    assert not old.root.exists()


def test_a_root_being_built_elsewhere_is_kept(tmp_path: Path) -> None:
    current = make_root(tmp_path, "current", 0)
    busy = make_root(tmp_path, "busy", 30)
    with open(busy.lock_file) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        build_root.remove_stale_roots(current, keep=1)
    assert busy.root.is_dir()


def test_cache_directory_honours_overrides() -> None:
    assert build_root.cache_home({"XDG_CACHE_HOME": "/x"}) == Path("/x/distroless-python")
    assert build_root.cache_home({"DISTROLESS_PYTHON_CACHE": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")


@pytest.mark.parametrize("line", ["bazel-bootstrap", "bazel-bootstrap = 7", "suite"])
def test_malformed_package_list_names_the_line(tmp_path: Path, line: str) -> None:
    listing = tmp_path / "build_root.packages"
    listing.write_text(f"suite forky\ncrane=1\n{line}\n")
    with pytest.raises(BuildRootError, match=r"build_root.packages(:3|.*needs)"):
        build_root.read_package_list(listing)


def test_missing_mmdebstrap_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build_root.shutil, "which", lambda name: None)
    with pytest.raises(BuildRootError, match="apt-get install mmdebstrap"):
        build_root.check_can_bootstrap(tmp_path)


def test_not_enough_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build_root.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(build_root.shutil, "disk_usage", lambda path: build_root.shutil._ntuple_diskusage(10, 9, 1))
    with pytest.raises(BuildRootError, match="Not enough disk space.*DISTROLESS_PYTHON_CACHE"):
        build_root.check_can_bootstrap(tmp_path)


def test_unreachable_mirror_names_the_url() -> None:
    # A closed port on loopback: the connection is refused at once.
    with pytest.raises(BuildRootError, match=r"unreachable: fetching http://127.0.0.1:9/dists/forky/InRelease"):
        build_root.check_mirror("http://127.0.0.1:9", "forky", timeout=5)


def test_reachable_mirror_passes(tmp_path: Path) -> None:
    (tmp_path / "dists" / "forky").mkdir(parents=True)
    (tmp_path / "dists" / "forky" / "InRelease").write_text("signed")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        build_root.check_mirror(f"http://127.0.0.1:{server.server_port}", "forky")
    finally:
        server.shutdown()
        server.server_close()


def test_mmdebstrap_command_pins_packages_and_ignores_valid_until(tmp_path: Path) -> None:
    packages = build_root.PackageList("forky", ("bazel-bootstrap=7.7.1", "crane=0.20"), "0" * 64)
    command = build_root.mmdebstrap_command(packages, tmp_path / "root", "http://m.invalid/debian")
    assert "--include=bazel-bootstrap=7.7.1,crane=0.20" in command
    assert "--aptopt=Acquire::Check-Valid-Until \"false\"" in command
    assert command[-3:] == ["forky", str(tmp_path / "root"), "http://m.invalid/debian"]


def test_mmdebstrap_lists_the_snapshot_after_the_mirror(tmp_path: Path) -> None:
    packages = build_root.PackageList("forky", ("crane=0.20",), "0" * 64, "20261120T000000Z")
    snapshot = build_root.snapshot_mirror({"DEBIAN_SNAPSHOT_MIRROR": "http://s.invalid/"}, packages)
    assert snapshot == "http://s.invalid/archive/debian/20261120T000000Z"
    command = build_root.mmdebstrap_command(packages, tmp_path / "root", "http://m.invalid/debian", snapshot)
    assert command[-2:] == ["http://m.invalid/debian", snapshot]
    # Without a service, or without a snapshot line, there is no fallback.
    assert build_root.snapshot_mirror({}, packages) == ""
    assert build_root.snapshot_mirror({"DEBIAN_SNAPSHOT_MIRROR": "http://s.invalid"},
                                      build_root.PackageList("forky", ("crane=0.20",), "0" * 64)) == ""


def test_package_list_reads_the_snapshot_line(tmp_path: Path) -> None:
    path = tmp_path / "packages"
    path.write_text("suite forky\nsnapshot 20261120T000000Z\ncrane=0.20  # why\n")
    packages = build_root.read_package_list(path)
    assert (packages.suite, packages.snapshot, packages.pins()) == ("forky", "20261120T000000Z", {"crane": "0.20"})


INDEX = """Package: crane
Version: 0.21-1
Architecture: amd64

Package: zstd
Version: 1.5.7+dfsg-4
Architecture: amd64

Package: zstd
Version: 1.5.7+dfsg-10
"""


def test_moved_pins_are_substituted_with_a_notice() -> None:
    served = build_root.parse_package_versions(INDEX)
    assert served == {"crane": {"0.21-1"}, "zstd": {"1.5.7+dfsg-4", "1.5.7+dfsg-10"}}
    packages = build_root.PackageList("forky", ("crane=0.20-1", "zstd=1.5.7+dfsg-4"), "0" * 64)
    substituted, notices = build_root.substitute_missing_pins(packages, served)
    assert substituted.packages == ("crane=0.21-1", "zstd=1.5.7+dfsg-4")
    assert substituted.digest == packages.digest  # the root keeps the name the pin file gives it
    assert notices == ["crane 0.20-1 is no longer served; using 0.21-1"]


def test_a_pin_whose_package_is_gone_is_an_error() -> None:
    packages = build_root.PackageList("forky", ("crane=0.20-1", "gone=1"), "0" * 64)
    with pytest.raises(BuildRootError, match=r"pins gone=1, which Debian forky no longer has at all\. Replace or remove"):
        build_root.substitute_missing_pins(packages, {"crane": {"0.20-1"}})


@pytest.mark.parametrize(("older", "newer"), [
    ("1.0", "1.1"), ("1.0~rc1", "1.0"), ("1.0", "1.0a"), ("1.0-1", "1.0-1+b1"), ("1.5.7+dfsg-4", "1.5.7+dfsg-10"),
    ("1:2.0", "2:1.0"), ("1.0-1", "1.0-1.1"), ("9", "10"),
])
def test_debian_versions_order_as_dpkg_orders_them(older: str, newer: str) -> None:
    assert build_root.debian_version_key(older) < build_root.debian_version_key(newer)


def test_system_bazelrc_keeps_bazel_offline_and_state_in_the_cache() -> None:
    layout = build_root.CacheLayout(Path("/cache"), "abc")
    rc = build_root.system_bazelrc(layout, {"rules_python", "aspect_bazel_lib"})
    assert "startup --output_user_root=/cache/bazel-abc\n" in rc
    assert "common --repository_cache=/cache/repository-cache\n" in rc
    assert "common --noenable_workspace\n" in rc
    assert "common --repo_env=DEBIAN_MIRROR\n" in rc
    assert "common --repo_env=DEBIAN_SNAPSHOT_MIRROR\n" in rc
    for name in build_root.STUB_MODULES:
        assert f"common --override_module={name}=" in rc
    # Bazel rejects overrides of modules nothing depends on: only the declared extra module appears.
    assert "common --override_module=aspect_bazel_lib=/usr/share/bazel/tools/aspect_bazel_lib\n" in rc
    assert "rules_shell" not in rc


def test_declared_modules_are_read_from_module_bazel(tmp_path: Path) -> None:
    module = tmp_path / "MODULE.bazel"
    module.write_text('module(name = "x")\nbazel_dep(name = "rules_python", version = "0.22.1")\n'
                      'bazel_dep(\n    name = "aspect_bazel_lib",\n    version = "2.22.5",\n)\n')
    assert build_root.declared_modules(module) == {"rules_python", "aspect_bazel_lib"}


def test_enter_command_binds_project_and_caches_and_passes_arguments() -> None:
    layout = build_root.CacheLayout(Path("/cache"), "abc")
    command = build_root.enter_command(layout, Path("/src/project"), {"PATH": "/usr/bin", "HOME": "/root"},
                                       ["test", "//...", "--", "-x"])
    assert command[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert "pivot_root" in command[command.index("-c") + 1]
    after_script = command[command.index("-c") + 2:]
    assert after_script[:6] == ["enter-root", "/cache/root-abc", "/src/project", "/src/project",
                                "/cache/bazel-abc", "/cache/repository-cache"]
    assert command[-5:] == ["bazel", "test", "//...", "--", "-x"]
    assert "env" in command and "-i" in command


def test_host_paths_given_to_bazel_are_made_absolute_and_bound(tmp_path: Path) -> None:
    argv = ["--output_base=out", "build", "--repository_cache", str(tmp_path / "repo"), "--disk_cache=",
            "//x", "--", "--distdir=not-an-option-here"]
    arguments, binds = build_root.host_path_arguments(argv, tmp_path)
    assert arguments == [f"--output_base={tmp_path / 'out'}", "build", "--repository_cache", str(tmp_path / "repo"),
                         "--disk_cache=", "//x", "--", "--distdir=not-an-option-here"]
    assert binds == [str(tmp_path / "out"), str(tmp_path / "repo")]
    assert (tmp_path / "out").is_dir() and (tmp_path / "repo").is_dir()
    command = build_root.enter_command(build_root.CacheLayout(Path("/cache"), "abc"), Path("/p"), {}, arguments,
                                       extra_binds=binds)
    script_arguments = command[command.index("-c") + 2:]
    assert script_arguments[script_arguments.index("--") - 2:script_arguments.index("--")] == binds


def test_remote_options_pass_unchanged_and_their_machine_files_are_bound(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("k")
    socket_path = tmp_path / "proxy.sock"
    socket_path.touch()
    argv = ["build", "--config=remote", "--remote_executor=grpcs://reapi.example.invalid:443",
            "--remote_cache", "grpc://127.0.0.1:50051", "--remote_instance_name=main",
            "--remote_header=x-token=abc", "--remote_timeout=600", "--tls_client_key=client.key",
            "--tls_certificate", str(tmp_path / "missing.pem"), f"--bes_backend=unix://{socket_path}",
            "--remote_default_exec_properties=cache-salt=1", "//python:3.13"]
    arguments, binds = build_root.host_path_arguments(argv, tmp_path)
    expected = list(argv)
    expected[expected.index("--tls_client_key=client.key")] = f"--tls_client_key={key}"
    assert arguments == expected
    assert binds == [str(key), str(socket_path)]
    arguments, binds = build_root.host_path_arguments(["build", "--remote_executor", f"unix:{socket_path}"], tmp_path)
    assert arguments == ["build", "--remote_executor", f"unix:{socket_path}"] and binds == [str(socket_path)]


def test_scratch_is_cleaned_only_while_no_server_runs(tmp_path: Path) -> None:
    layout = build_root.CacheLayout(tmp_path, "abc")
    jni = layout.root / "tmp" / "bazel-jni.123"
    jni.mkdir(parents=True)
    (layout.root / "tmp" / "kept").mkdir()
    server = layout.output_user_root / "outputbase" / "server"
    server.mkdir(parents=True)
    (server / "server.pid.txt").write_text(str(os.getpid()))  # a live process stands in for the server
    build_root.clean_scratch(layout)
    assert jni.is_dir()
    (server / "server.pid.txt").write_text("999999999")  # no such process
    build_root.clean_scratch(layout)
    assert not jni.exists() and (layout.root / "tmp" / "kept").is_dir()


def test_engine_socket_is_bound_only_when_it_exists(tmp_path: Path) -> None:
    socket_path = tmp_path / "docker.sock"
    assert build_root.engine_sockets({}, default=str(socket_path)) == []
    socket_path.touch()
    assert build_root.engine_sockets({}, default=str(socket_path)) == [str(socket_path)]
    assert build_root.engine_sockets({"DOCKER_HOST": f"unix://{socket_path}"}, default="/nonexistent") == [str(socket_path)]
    assert build_root.engine_sockets({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, default=str(socket_path)) == []


def test_a_user_other_than_root_is_refused_before_anything_is_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    def must_not_run(*args: object) -> None:
        raise AssertionError("tools/bazel went on for a non-root user")

    monkeypatch.setattr(build_root, "read_package_list", must_not_run)
    monkeypatch.setattr(build_root.os, "geteuid", lambda: 1000)
    assert build_root.main(["build", "//python:3.9"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tools/bazel: tools/bazel must run as root:") and error.count("\n") == 1
    assert "sudo -E tools/bazel" in error


def test_root_environment_passes_only_known_variables() -> None:
    environment = build_root.root_environment(
        {"DOCKER_HOST": "unix:///d.sock", "SECRET_TOKEN": "x", "CI": "true", "DISTROLESS_REPOSITORY": "127.0.0.1:5/x",
         "DEBIAN_SNAPSHOT_MIRROR": "http://s.invalid"},
        {"DEBIAN_MIRROR": "http://m.invalid/debian"})
    assert environment["DOCKER_HOST"] == "unix:///d.sock"
    assert "DISTROLESS_REPOSITORY" not in environment  # read by :push on the machine, not in the root
    assert environment["DEBIAN_SNAPSHOT_MIRROR"] == "http://s.invalid"
    assert environment["DEBIAN_MIRROR"] == "http://m.invalid/debian"
    assert "SECRET_TOKEN" not in environment
    assert environment["PATH"].startswith("/usr/sbin")


def test_the_readme_variable_table_is_the_pass_through_list() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    # The first table: what enters the root (the second, what the machine-side launchers read, is checked below).
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0].split("| read on the machine", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Za-z_]+)`", row.split(" | ")[0])}
    documented |= {name.upper() for name in documented if name.islower()}  # "(either case)"
    assert {"DEBIAN_MIRROR", "DOCKER_HOST"} <= documented
    reaching = (set(build_root.PASSED_VARIABLES) | set(build_root.MIRROR_VARIABLES) | set(build_root.HOST_VARIABLES)
                | {build_root.REMOTE_CACHE_VARIABLE})
    assert documented - reaching == set(), "documented, but tools/bazel drops them: add them to PASSED_VARIABLES"
    # The terminal's and CI's own, and the one tools/bazel sets itself inside the root.
    internal = {"TERM", "CI", "USER", "LOGNAME", "COLUMNS", build_root.REMOTE_CACHE_VARIABLE}
    assert reaching - documented - internal - {"XDG_CACHE_HOME", "HOME"} == set(), "passed, but not documented"


def test_the_readme_names_what_the_machine_side_launchers_read() -> None:
    """They get the whole environment; the second table lists what they read, and none of it enters the root."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| read on the machine by push, verify and load |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?", table, re.MULTILINE))
    names = {name for pair in documented for name in pair if name}
    assert names == {"DISTROLESS_REPOSITORY", "DOCKER_CONFIG", "COSIGN_KEY", "COSIGN_PASSWORD"}
    assert names.isdisjoint(build_root.PASSED_VARIABLES)


def test_main_reports_errors_in_one_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fail(argv, environ):  # type: ignore[no-untyped-def]
        raise BuildRootError("something is missing; do this.")

    monkeypatch.setattr(build_root, "run", fail)
    assert build_root.main(["build"]) == 2
    assert capsys.readouterr().err == "tools/bazel: something is missing; do this.\n"


def test_bazel_runs_in_the_users_directory_inside_the_project() -> None:
    layout = build_root.CacheLayout(Path("/cache"), "abc")
    command = build_root.enter_command(layout, Path("/p"), {}, ["build", ":x"], cwd=Path("/p/python"))
    after_script = command[command.index("-c") + 2:]
    assert after_script[:4] == ["enter-root", "/cache/root-abc", "/p/python", "/p"]
    assert 'cd "$cwd"' in build_root.ENTER_SCRIPT


@pytest.mark.parametrize("argv, index", [
    (["run", "//:push"], 0),
    (["--output_base=/o", "run", "//:push"], 1),
    (["--output_base", "/o", "run", "//:push"], 2),
    (["--bazelrc=/r", "--nohome_rc", "build", "//..."], 2),
    (["--version"], None),
])
def test_command_index_skips_startup_options(argv: list[str], index: int | None) -> None:
    assert build_root.command_index(argv) == index


def test_run_asks_bazel_for_its_script_and_other_commands_pass_unchanged() -> None:
    script = Path("/cache/bazel-abc/run-script-1")
    assert build_root.with_script_path(["--output_base=/o", "run", "//:push", "--", "--key", "k"], script) == [
        "--output_base=/o", "run", f"--script_path={script}", "//:push", "--", "--key", "k"]
    assert build_root.with_script_path(["build", "//:push"], script) is None
    assert build_root.with_script_path(["test", "//...", "--", "run"], script) is None
    # A caller who asks for a script gets theirs; a --script_path after `--` is the program's argument.
    assert build_root.with_script_path(["run", "--script_path=/mine", "//:push"], script) is None
    assert build_root.with_script_path(["run", "//:push", "--", "--script_path=x"], script) is not None


def run_script_text(launcher: Path) -> str:
    """A run script as Bazel 7 writes it for `--script_path`."""
    return (f"#!/bin/bash\ncd {launcher.parent}/x.runfiles/_main && \\\n  exec env \\\n    -u RUNFILES_DIR \\\n"
            f"    BUILD_WORKING_DIRECTORY=/p \\\n  {launcher} --repository 'a b' \"$@\"")


def test_host_launchers_are_found_by_their_marker(tmp_path: Path) -> None:
    marked, plain = tmp_path / "push.sh", tmp_path / "update"
    marked.write_text(f"#!/bin/sh\n{build_root.HOST_LAUNCHER}, because ...\nexec push \"$@\"\n")
    plain.write_text("#!/bin/sh\nexec update \"$@\"\n")
    assert build_root.host_launcher(run_script_text(marked)) == marked
    assert build_root.host_launcher(run_script_text(plain)) is None
    assert build_root.host_launcher(run_script_text(tmp_path / "gone.sh")) is None


def test_the_push_verify_and_load_launchers_are_marked() -> None:
    templates = Path(__file__).resolve().parents[1] / "oci" / "private"
    for name in ("push", "verify", "load"):
        lines = (templates / f"{name}.sh.tpl").read_text().splitlines()
        assert lines[1].startswith(build_root.HOST_LAUNCHER), name
    assert not (templates / "structure_test.sh.tpl").read_text().splitlines()[1].startswith(build_root.HOST_LAUNCHER)


def test_host_tools_run_the_roots_binaries_with_the_roots_loader(tmp_path: Path) -> None:
    """Wrappers over a "root" that is this test's own file system: they must really run its crane."""
    loader = build_root.ROOT_LOADERS.get(os.uname().machine)
    if loader is None or not Path("/usr/lib", loader).exists() or not Path("/usr/bin/crane").exists():
        pytest.fail(f"no loader at /usr/lib/{loader} or no /usr/bin/crane here ({os.uname().machine}; the build root "
                    "has both): the wrappers were NOT checked")
    layout = build_root.CacheLayout(tmp_path, "abc")
    layout.root.symlink_to("/")
    first, last = build_root.write_host_tools(layout)
    assert sorted(path.name for path in first.iterdir()) == ["cosign", "crane"]
    assert [path.name for path in last.iterdir()] == ["docker"]
    result = subprocess.run([str(first / "crane"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "crane" in result.stdout, result.stderr
    with pytest.raises(BuildRootError, match="cannot do on s390x"):
        build_root.write_host_tools(layout, machine="s390x")


def test_host_environment_is_the_users_with_the_roots_tools_around_its_path() -> None:
    user = {"PATH": "/home/u/bin:/usr/bin", "HOME": "/home/u", "DOCKER_CONFIG": "/run/secrets/docker",
            "COSIGN_PASSWORD": "x", "BUILD_WORKING_DIRECTORY": "/p/sub"}
    environment = build_root.host_environment(user, (Path("/t/first"), Path("/t/last")), Path("/p"), Path("/p"))
    assert environment["PATH"] == "/t/first:/home/u/bin:/usr/bin:/t/last"
    assert {key: environment[key] for key in ("HOME", "DOCKER_CONFIG", "COSIGN_PASSWORD")} == {
        "HOME": "/home/u", "DOCKER_CONFIG": "/run/secrets/docker", "COSIGN_PASSWORD": "x"}
    assert environment["BUILD_WORKING_DIRECTORY"] == "/p/sub"
    assert environment["BUILD_WORKSPACE_DIRECTORY"] == "/p"


def test_a_host_launchers_script_runs_on_the_machine_and_any_other_in_the_root(tmp_path: Path) -> None:
    layout = build_root.CacheLayout(tmp_path, "abc")
    layout.root.symlink_to("/")
    marked, plain = tmp_path / "push.sh", tmp_path / "update"
    marked.write_text(f"#!/bin/sh\n{build_root.HOST_LAUNCHER}\n")
    plain.write_text("#!/bin/sh\n")
    for launcher, on_machine in ((marked, True), (plain, False)):
        script = tmp_path / "run-script-1"
        script.write_text(run_script_text(launcher))
        plan = build_root.Plan(["bazel"], script, layout, Path("/p"), lambda text: ["in-root", text])
        command, environment = build_root.run_script(plan, {"PATH": "/usr/bin", "HOME": "/home/u"})
        assert not script.exists(), "the run script is left behind"
        if on_machine:
            assert command[:2] == ["/bin/sh", "-c"] and command[2] == run_script_text(launcher)
            assert environment is not None and environment["HOME"] == "/home/u"
        else:
            assert command == ["in-root", run_script_text(launcher)] and environment is None


def test_mirror_variables_are_given_to_each_fetching_command_as_values() -> None:
    mirrors = {"DEBIAN_MIRROR": "http://m.invalid/debian", "DEBIAN_SECURITY_MIRROR": "http://m.invalid/debian-security"}
    argv = build_root.with_mirror_variables(["--output_base=/o", "build", "//x"], mirrors, {})
    assert argv == ["--output_base=/o", "build", "--repo_env=DEBIAN_MIRROR=http://m.invalid/debian",
                    "--repo_env=DEBIAN_SECURITY_MIRROR=http://m.invalid/debian-security",
                    "--repo_env=DEBIAN_SNAPSHOT_MIRROR=", "//x"]
    with_snapshot = build_root.with_mirror_variables(["test", "//..."], mirrors, {"DEBIAN_SNAPSHOT_MIRROR": "http://s.invalid"})
    assert "--repo_env=DEBIAN_SNAPSHOT_MIRROR=http://s.invalid" in with_snapshot
    for command in (["shutdown"], ["version"], ["--version"], []):
        assert build_root.with_mirror_variables(command, mirrors, {}) == command


@pytest.mark.parametrize("variable", ["DEBIAN_MIRROR", "DEBIAN_SECURITY_MIRROR", "DEBIAN_SNAPSHOT_MIRROR"])
def test_a_mirror_url_bazel_cannot_fetch_is_refused_naming_the_variable(variable: str) -> None:
    environ = {"DEBIAN_MIRROR": "http://m.invalid/debian", variable: "ftp://m.invalid/debian"}
    with pytest.raises(BuildRootError, match=rf"^{variable}=ftp://m.invalid/debian is not an http://, https:// or "
                                             rf"file:// URL.*set {variable} to"):
        build_root.find_mirrors(environ, [])
    assert build_root.find_mirrors({"DEBIAN_MIRROR": "file:///srv/debian"}, [])["DEBIAN_MIRROR"] == "file:///srv/debian"


def test_a_mirror_from_the_apt_sources_says_so_when_refused() -> None:
    sources = [AptSource(("ftp://m.invalid/debian",), ("bookworm",), "debian-archive-keyring.gpg")]
    with pytest.raises(BuildRootError, match=r"DEBIAN_MIRROR=ftp://m.invalid/debian \(from the machine's apt sources\)"):
        build_root.find_mirrors({}, sources)


def test_a_checkout_or_cache_path_beyond_ascii_is_refused_before_bazel_starts() -> None:
    with pytest.raises(BuildRootError, match="The checkout /tmp/pröbe dir holds characters outside ASCII.*clone or move"):
        build_root.check_bazel_path(Path("/tmp/pröbe dir"), "The checkout", "clone or move it")
    build_root.check_bazel_path(Path("/tmp/probe dir"), "The checkout", "clone or move it")


def test_an_unusable_cache_directory_is_named_with_the_fix(tmp_path: Path) -> None:
    as_file = tmp_path / "cache"
    as_file.write_text("")
    with pytest.raises(BuildRootError, match=f"The cache directory {as_file} .* is a file, not a directory"):
        build_root.check_cache_home(as_file)
    with pytest.raises(BuildRootError, match="cannot be written .*set DISTROLESS_PYTHON_CACHE to a writable directory"):
        build_root.check_cache_home(Path("/proc/self/no-cache-here"))
    build_root.check_cache_home(tmp_path / "new" / "cache")
    assert (tmp_path / "new" / "cache").is_dir()


@pytest.mark.parametrize("argument, path", [
    ("--execution_log_json_file=/tmp/x.json", "/tmp/x.json"),
    ("/tmp/p.json", "/tmp/p.json"),
    ("--override_module=rules_python=/src/rules_python", "/src/rules_python"),
    ("--registry=file:///srv/registry", "/srv/registry"),
    ("--platforms=//platforms:arm64", ""),
    ("//python:3.9", ""),
    ("--define=x=/y", ""),
    ("--jobs=4", ""),
])
def test_every_absolute_path_before_the_double_dash_is_a_machine_path(argument: str, path: str) -> None:
    assert build_root.named_path(argument, Path("/p/sub")) == path


def test_paths_relative_to_where_bazel_runs_are_machine_paths_too() -> None:
    assert build_root.named_path("--profile=../prof.json", Path("/p/sub")) == "/p/prof.json"
    assert build_root.named_path("--config=remote", Path("/p/sub")) == ""


def test_machine_paths_are_bound_so_outputs_land_on_the_machine(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    (root / "only-in-root").mkdir()
    machine_tmp = tmp_path / "tmp"
    machine_tmp.mkdir()
    existing = tmp_path / "profile.json"
    existing.write_text("{}")
    assert build_root.machine_path_binds(str(existing), root) == [str(existing)]
    assert build_root.machine_path_binds(str(tmp_path), root) == [str(tmp_path)]
    # A new output in a directory of the machine's own: that directory is bound.
    assert build_root.machine_path_binds(str(tmp_path / "new.json"), root) == [str(tmp_path)]
    # In a directory the root has too (its own /tmp): the file is created here and bound alone.
    outside = f"/tmp/distroless-test-{os.getpid()}.json"
    try:
        assert build_root.machine_path_binds(outside, root) == [outside] and Path(outside).is_file()
    finally:
        Path(outside).unlink(missing_ok=True)
    with pytest.raises(BuildRootError, match="/only-in-root/x.json: the directory /only-in-root does not exist on this "
                                             "machine"):
        build_root.machine_path_binds("/only-in-root/x.json", root)
    arguments, binds = build_root.host_path_arguments(
        ["build", f"--execution_log_json_file={tmp_path / 'log.json'}", "//x", "--", "/not/bound"], tmp_path, root)
    assert arguments[1] == f"--execution_log_json_file={tmp_path / 'log.json'}" and binds == [str(tmp_path)]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))


def test_a_worktree_binds_its_git_directories_and_a_clone_binds_none(tmp_path: Path) -> None:
    main, worktree = tmp_path / "main", tmp_path / "worktree"
    (main / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (main / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n")
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'wt'}\n")
    assert build_root.git_directories(worktree) == [str(main / ".git")]
    assert build_root.git_directories(main) == []
    (worktree / ".git").write_text("not a gitdir line\n")
    assert build_root.git_directories(worktree) == []
    assert build_root.git_directories(tmp_path / "no-checkout") == []
