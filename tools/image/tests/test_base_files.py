"""Tests for tools/image/base_files.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tools.image import base_files
from tools.tarball import iter_members


def members(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    return {info.name.rstrip("/"): (info, data) for info, data in iter_members(io.BytesIO(path.read_bytes()))}


@pytest.fixture
def layer(tmp_path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    out = tmp_path / "base.tar.gz"
    assert base_files.main(["--output", str(out)]) == 0
    return members(out)


def parse_colon_file(data: bytes) -> list[list[str]]:
    text = data.decode()
    assert text.endswith("\n")
    return [line.split(":") for line in text.splitlines()]


def test_passwd(layer: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    info, data = layer["etc/passwd"]
    assert info.mode == 0o644 and (info.uid, info.gid) == (0, 0)
    assert data.decode() == (
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    rows = parse_colon_file(data)
    assert all(len(row) == 7 for row in rows)
    assert {row[0]: (int(row[2]), int(row[3])) for row in rows} == {
        "root": (0, 0), "nobody": (65534, 65534), "nonroot": (65532, 65532)
    }


def test_group(layer: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    info, data = layer["etc/group"]
    assert info.mode == 0o644
    rows = parse_colon_file(data)
    assert all(len(row) == 4 and row[1] == "x" and row[3] == "" for row in rows)
    assert [(row[0], int(row[2])) for row in rows] == [
        ("root", 0), ("nobody", 65534), ("tty", 5), ("staff", 50), ("nonroot", 65532)
    ]


def test_every_user_has_its_primary_group(layer: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    gids = {int(row[2]) for row in parse_colon_file(layer["etc/group"][1])}
    assert {int(row[3]) for row in parse_colon_file(layer["etc/passwd"][1])} <= gids


def test_nsswitch_uses_files_and_dns_only(layer: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    info, data = layer["etc/nsswitch.conf"]
    assert info.mode == 0o644
    databases = {}
    for line in data.decode().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sources = line.split(":", 1)
            databases[name] = sources.split()
    assert databases["hosts"] == ["files", "dns"]
    for name in ("passwd", "group", "shadow", "networks", "protocols", "services", "ethers", "rpc"):
        assert databases[name] == ["files"], name


def test_directories(layer: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    tmp, _ = layer["tmp"]
    assert tmp.isdir() and tmp.mode == 0o1777 and (tmp.uid, tmp.gid) == (0, 0)
    root_home, _ = layer["root"]
    assert root_home.isdir() and root_home.mode == 0o700 and (root_home.uid, root_home.gid) == (0, 0)
    nonroot_home, _ = layer["home/nonroot"]
    assert nonroot_home.isdir() and nonroot_home.mode == 0o700
    assert (nonroot_home.uid, nonroot_home.gid) == (65532, 65532)
    assert layer["home"][0].mode == 0o755
    assert "nonexistent" not in layer


def test_only_the_expected_entries(layer: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    assert sorted(layer) == ["etc", "etc/group", "etc/nsswitch.conf", "etc/passwd", "home", "home/nonroot", "root", "tmp"]


def test_users_table_drives_the_files() -> None:
    user = base_files.User("app", 1000, 1000, "/home/app")
    layer = base_files.base_layer(users=(base_files.ROOT, user), groups=(base_files.Group("app", 1000),))
    assert layer.entries["etc/passwd"].data == b"root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n"
    assert layer.entries["etc/group"].data == b"app:x:1000:\n"
    assert layer.entries["home/app"].uid == 1000


def test_deterministic(tmp_path: Path) -> None:
    for compression in ("gzip", "none"):
        first, second = tmp_path / f"1.{compression}", tmp_path / f"2.{compression}"
        assert base_files.main(["--output", str(first), "--compression", compression]) == 0
        assert base_files.main(["--output", str(second), "--compression", compression]) == 0
        assert first.read_bytes() == second.read_bytes()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
