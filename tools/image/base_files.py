"""Writes the distroless-style base layer: users, groups, name-service config, home directories and /tmp.

The accounts follow distroless's base image: root, nobody and nonroot (65532) users, all with
/sbin/nologin as shell (no shell exists in the image), and the root, nobody, tty, staff and nonroot groups.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from tools.tarball import COMPRESSIONS, Layer

NOLOGIN = "/sbin/nologin"
NO_HOME = "/nonexistent"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str = NOLOGIN

    def passwd_line(self) -> str:
        # name:password:uid:gid:gecos:home:shell; "x" means the password would be in /etc/shadow (there is none).
        return f"{self.name}:x:{self.uid}:{self.gid}:{self.name}:{self.home}:{self.shell}"


@dataclass(frozen=True)
class Group:
    name: str
    gid: int

    def group_line(self) -> str:
        return f"{self.name}:x:{self.gid}:"


ROOT = User("root", 0, 0, "/root")
NOBODY = User("nobody", 65534, 65534, NO_HOME)
NONROOT = User("nonroot", 65532, 65532, "/home/nonroot")
USERS: tuple[User, ...] = (ROOT, NOBODY, NONROOT)
GROUPS: tuple[Group, ...] = (
    Group("root", 0),
    Group("nobody", 65534),
    Group("tty", 5),
    Group("staff", 50),
    Group("nonroot", 65532),
)

# Only local files and DNS: the image has no NSS modules but glibc's built-in files and dns ones.
NSSWITCH_CONF = """\
# /etc/nsswitch.conf: local files only, plus DNS for host names.

passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
"""

HOME_MODE = 0o700
TMP_MODE = 0o1777


def passwd_file(users: tuple[User, ...] = USERS) -> str:
    return "".join(user.passwd_line() + "\n" for user in users)


def group_file(groups: tuple[Group, ...] = GROUPS) -> str:
    return "".join(group.group_line() + "\n" for group in groups)


def base_layer(users: tuple[User, ...] = USERS, groups: tuple[Group, ...] = GROUPS) -> Layer:
    layer = Layer()
    layer.add_file("etc/passwd", passwd_file(users).encode())
    layer.add_file("etc/group", group_file(groups).encode())
    layer.add_file("etc/nsswitch.conf", NSSWITCH_CONF.encode())
    for user in users:
        if user.home != NO_HOME:
            layer.add_dir(user.home, HOME_MODE, uid=user.uid, gid=user.gid)
    layer.add_dir("tmp", TMP_MODE)
    return layer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="layer to write")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="gzip")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_layer().write(args.output, args.compression)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
