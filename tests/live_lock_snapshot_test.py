"""The committed bullseye lock, resolved from a live mirror, builds its image from a snapshot service alone.

A live-resolved lock records, per suite, snapshot times a few hours after its Release date (lock.py's
SNAPSHOT_DELAYS_H). This test serves the lock's real .debs (this build's own downloads) from a fixture that
behaves like Debian's snapshot service: it resolves a timestamp to its last import at or before it
(redirecting there, as the real one does), and the import holding a Release lands seven hours after the
Release's date; the imports before it lack the Release's files. The mirror serves nothing. A nested Bazel
then builds //python:3.9_amd64 from a copy of the workspace with a repository cache of its own, and the
image must have this build's digest: every .deb came through the snapshot times, the first of which (six
hours after the date) resolves to an import from before the Release and answers 404.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from tools.remote.nested_bazel import NestedBazel, copy_checkout, digest_of, executed_locally, workspace_from_runfiles

RELEASE = "bullseye"
IMAGE = "3.9_amd64"
LOCK = f"debian_packages/{RELEASE}/lock.json"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# How long after a Release's date the fixture's import holding it lands ("imports land hours after").
IMPORT_DELAY = timedelta(hours=7)


def parse(timestamp: str) -> datetime:
    return datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def stamp(when: datetime) -> str:
    return when.strftime(TIMESTAMP_FORMAT)


class SnapshotService:
    """Imports per archive: each holds the archive's pool files once its newest Release has been imported."""

    def __init__(self, lock: dict, debs: dict[str, Path]) -> None:
        self.files: dict[str, dict[str, Path]] = {}  # archive -> pool path -> the .deb
        for package in lock["packages"]:
            self.files.setdefault(package["archive"], {})[package["filename"]] = debs[package["name"]]
        self.imports: dict[str, list[datetime]] = {}  # archive -> import times, oldest first
        self.complete: dict[str, datetime] = {}  # archive -> the first import holding its files
        for archive in self.files:
            dates = [parse(s["date"]) for s in lock["sources"] if s["archive"] == archive]
            # One import a day before the oldest Release (it holds none of the pinned files), one after each.
            times = {min(dates) - timedelta(days=1), *(date + IMPORT_DELAY for date in dates)}
            self.imports[archive] = sorted(times)
            self.complete[archive] = max(dates) + IMPORT_DELAY
        self.requests: list[tuple[str, int]] = []  # (path, status), in order
        self.lock = threading.Lock()

    def answer(self, path: str) -> tuple[int, str | Path]:
        """(status, Location or file) for a GET of /archive/<archive>/<timestamp>/<pool path>."""
        parts = path.lstrip("/").split("/", 3)
        if len(parts) != 4 or parts[0] != "archive" or parts[1] not in self.files:
            return 404, ""
        archive, timestamp, pool = parts[1], parts[2], parts[3]
        try:
            asked = parse(timestamp)
        except ValueError:
            return 404, ""
        earlier = [when for when in self.imports[archive] if when <= asked]
        if not earlier:
            return 404, ""
        resolved = earlier[-1]
        if resolved != asked:
            return 302, f"/archive/{archive}/{stamp(resolved)}/{pool}"
        if resolved < self.complete[archive] or pool not in self.files[archive]:
            return 404, ""
        return 200, self.files[archive][pool]


class Handler(http.server.BaseHTTPRequestHandler):
    def __init__(self, *args: object, service: SnapshotService | None, **kwargs: object) -> None:
        self.service = service
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = urlsplit(self.path).path
        status, what = self.service.answer(path) if self.service else (404, "")
        if self.service:
            with self.service.lock:
                self.service.requests.append((path, status))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", str(what))
        if status == 200:
            data = Path(what).read_bytes()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    def __init__(self, service: SnapshotService | None) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, service=service))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def runfile(rootpath: str) -> Path:
    return Path(os.environ["TEST_SRCDIR"]) / "_main" / rootpath


def this_builds_debs() -> dict[str, Path]:
    """Package name -> this build's download of it (DEBS: name=rootpath pairs from the BUILD file)."""
    pairs = [pair.split("=", 1) for pair in os.environ.get("DEBS", "").split()]
    assert pairs, "DEBS is empty: run this test with `tools/bazel test //tests:live_lock_snapshot_test`"
    # A rootpath in another repository is ../<repository>/<path>, which is <repository>/<path> in the runfiles.
    return {name: runfile(path) for name, path in pairs}


def test_live_lock_builds_from_the_snapshot_service(tmp_path: Path) -> None:
    original = workspace_from_runfiles(dict(os.environ))
    lock = json.loads((original / LOCK).read_text())
    assert all(source["snapshot"] is None for source in lock["sources"]), f"{LOCK} is no longer resolved live"
    assert all(source["snapshots"] for source in lock["sources"]), f"{LOCK} records no snapshot times"
    expected = digest_of(runfile(f"python/{IMAGE}/index.json"))

    service = SnapshotService(lock, this_builds_debs())
    snapshot, mirror = Server(service), Server(None)
    workspace = tmp_path / "workspace"
    copy_checkout(original, workspace)
    scratch = Path(os.environ.get("TEST_TMPDIR", tmp_path))
    try:
        with NestedBazel(workspace, scratch, "live-lock-snapshot") as bazel:
            result = bazel.run(
                "build", f"//python:{IMAGE}",
                # A repository cache of its own: the .debs must come over the network, not from this build's.
                f"--repository_cache={scratch / 'repository-cache'}",
                f"--repo_env=DEBIAN_MIRROR={mirror.url}/debian",
                f"--repo_env=DEBIAN_SECURITY_MIRROR={mirror.url}/debian-security",
                f"--repo_env=DEBIAN_SNAPSHOT_MIRROR={snapshot.url}",
            )
            assert result.returncode == 0, "the build from the snapshot service failed; its output is above"
            assert executed_locally(result.processes) > 0, f"the nested build ran no action: {result.processes}"
            built = digest_of(bazel.bin_path(f"python/{IMAGE}/index.json"))
    finally:
        snapshot.stop()
        mirror.stop()

    served = {path for path, status in service.requests if status == 200}
    pinned = {f"{package['archive']}/{package['filename']}" for package in lock["packages"]}
    # /archive/<archive>/<timestamp>/<pool path> -> <archive>/<pool path>
    fetched = {"/".join(path.split("/", 4)[2:5:2]) for path in served}
    assert fetched <= pinned, f"the service served files the lock does not pin: {sorted(fetched - pinned)[:3]}"
    assert fetched, "no .deb came from the snapshot service"
    early = [path for path, status in service.requests if status == 404]
    assert early, "no snapshot time resolved to an import from before the Release: the fixture tested no order"
    assert built == expected, f"//python:{IMAGE} built from the snapshot service is {built}, not {expected}"
    print(f"checked: {len(fetched)} of the lock's {len(pinned)} .debs came from the snapshot service "
          f"({len(early)} earlier snapshot times answered 404 first); digest {built}", file=sys.stderr)


if __name__ == "__main__":
    import pytest

    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
