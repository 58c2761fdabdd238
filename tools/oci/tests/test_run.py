"""Tests for tools/oci/run.py and tools/oci/engine.py: the choices they make before any engine runs."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tools.oci import engine, run
from tools.oci.structure_test import EngineError


def test_a_run_without_an_engine_or_root_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(run.os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match="tools/bazel run //tools/oci:engine` starts one"):
        with run.engine("amd64", tmp_path):
            pass


def test_a_named_engine_that_does_not_answer_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nothing.sock'}")
    with pytest.raises(EngineError, match="names an engine that does not answer"):
        with run.engine("amd64", tmp_path):
            pass


def test_the_launchers_separator_is_not_passed_to_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(run, "run", lambda archive, layout, tag, arguments, scratch: seen.append(arguments) or 7)
    assert run.main(["--archive", "a.tar", "--layout", "l", "--tag", "t", "--", "-c", "print(1)"]) == 7
    assert run.main(["--archive", "a.tar", "--layout", "l", "--tag", "t", "--", "--", "x"]) == 7
    assert seen == [["-c", "print(1)"], ["--", "x"]]


def test_leading_publish_options_are_the_runs_and_the_rest_the_containers() -> None:
    Publish = run.Publish
    assert run.split_arguments(["--publish", "8080", "--port", "8080"]) == ([Publish(8080, 8080)], ["--port", "8080"])
    assert run.split_arguments(["-p", "9000:8080", "--publish=81", "--", "-p", "x"]) == (
        [Publish(9000, 8080), Publish(81, 81)], ["-p", "x"])
    # Only leading options are the run's: later ones, and everything after `--`, go to the container.
    assert run.split_arguments(["-c", "print(1)", "--publish", "1"]) == ([], ["-c", "print(1)", "--publish", "1"])
    assert run.split_arguments(["--", "--", "x"]) == ([], ["--", "x"])
    for bad, message in ((["--publish"], "needs a port"), (["-p", "http"], "not a port number"),
                         (["-p", "70000"], "not a port number")):
        with pytest.raises(run.RunOptionError, match=message):
            run.split_arguments(bad)


def test_published_ports_reach_the_machines_loopback_in_either_engine() -> None:
    ports = [run.Publish(9000, 8080)]
    assert run.network_options(ports, private=False, emulated=False) == ["--publish=127.0.0.1:9000:8080"]
    assert run.network_options(ports, private=False, emulated=True) == ["--publish=127.0.0.1:9000:8080"]
    assert run.network_options([], private=False, emulated=False) == []
    # DOCKER_HOST's engine without a bridge (as //tools/oci:engine's): on this machine, its network; elsewhere, refused.
    assert run.network_options([run.Publish(8080, 8080)], False, False, bridge=False,
                               docker_host="unix:///run/engine.sock") == ["--network=host"]
    with pytest.raises(run.RunOptionError, match="no bridge network to publish ports from, and it is not on this machine"):
        run.network_options([run.Publish(8080, 8080)], False, False, bridge=False, docker_host="tcp://10.0.0.2:2375")
    assert run.network_options([], private=True, emulated=False) == ["--network=none"]
    assert run.network_options([run.Publish(8080, 8080)], private=True, emulated=False) == ["--network=host"]
    with pytest.raises(run.RunOptionError, match=r"publish one port \(--publish 8080\)"):
        run.network_options(ports, private=True, emulated=False)
    # An emulated image's engine has its own network namespace: the container shares it, and forward() relays.
    assert run.network_options(ports, private=True, emulated=True) == ["--network=host"]


def test_forward_relays_each_connection_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay itself, with the namespace switch left out (entering one needs root outside the sandbox)."""
    entered: list[Path] = []
    monkeypatch.setattr(run, "_enter_network_namespace", entered.append)
    inside = socket.create_server(("127.0.0.1", 0))
    target = inside.getsockname()[1]

    def echo_upper() -> None:
        for _ in range(2):
            connection, _ = inside.accept()
            with connection:
                connection.sendall(connection.recv(1024).upper())

    threading.Thread(target=echo_upper, daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = probe.getsockname()[1]
    listeners = run.forward([run.Publish(host, target)], Path("/proc/1/ns/net"))
    try:
        for word in (b"hello", b"again"):
            with socket.create_connection(("127.0.0.1", host), timeout=10) as client:
                client.sendall(word)
                assert client.recv(1024) == word.upper()
    finally:
        run.stop_forwarding(listeners)
    assert entered == [Path("/proc/1/ns/net")]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", host), timeout=2)


def test_the_engines_socket_goes_beside_the_output_bases() -> None:
    start = Path("/cache/bazel-root/0123abcd/execroot/_main/bazel-out/k8-fastbuild/bin/tools/oci/engine.runfiles/_main")
    assert engine.shared_directory(start) == Path("/cache/bazel-root")
    with pytest.raises(EngineError, match="not in a Bazel output base"):
        engine.shared_directory(Path("/home/someone"))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
