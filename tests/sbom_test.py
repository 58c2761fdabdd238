"""Every image's SPDX SBOM validates with spdx-tools and describes the packages its image holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SBOMS = [Path(path) for path in os.environ["SBOMS"].split()]


def test_there_is_an_sbom_for_every_image() -> None:
    # 4 versions; 3.9 has one architecture, 3.11 two, 3.13 and 3.14 three; five variants each.
    assert len(SBOMS) == 5 * (1 + 2 + 3 + 3), [path.name for path in SBOMS]


@pytest.mark.parametrize("sbom", SBOMS, ids=[path.name for path in SBOMS])
def test_sbom_validates(sbom: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i", str(sbom)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(sbom.read_text())
    assert document["spdxVersion"] == "SPDX-2.3"
    packages = document["packages"]
    names = {package["name"] for package in packages}
    assert {"libc6", "base-files", "dash"} <= names
    assert ("busybox-static" in names) == ("debug" in sbom.name or "dev" in sbom.name)
    assert ("python3-pip" in names) == ("dev" in sbom.name)
    for package in packages:
        if package["name"] in {"libc6", "dash"}:
            assert package.get("versionInfo") and package.get("checksums"), package
            assert any(ref["referenceType"] == "purl" for ref in package.get("externalRefs", [])), package


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
