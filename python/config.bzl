"""The Python images: one entry per Python version. Adding a version on a new Debian release is one entry here
plus that release's manifest and lock in debian_packages/<release>/ (README, "adding a Python version").

Each entry: the Debian `distribution` whose lock it uses (debian_packages/<distribution>), the `python`
executable, `archs`, whether the release is `merged_usr` (bookworm and later), the stdlib paths to `pruned`,
and whether the version is `experimental` (tagged <version>-experimental and never `latest`). Which packages
each image holds is not here: the release's manifest names them once, in groups (system, python, debug,
dev), which the lock carries.
"""

# Where the project's source lives, recorded in each image's org.opencontainers.image.source label;
# left empty (and the label omitted) until the project has a public home.
SOURCE_URL = ""

def _python(distribution, version, merged_usr, experimental = False, archs = ["amd64", "arm64"]):
    python = "python" + version
    return struct(
        distribution = distribution,
        python = python,
        archs = archs,
        experimental = experimental,
        merged_usr = merged_usr,
        # Only turtle.py: Debian ships the rest of what a server image has no use for in packages the image
        # leaves out. Why each part goes: README.md, "The pruned standard library".
        pruned = ["usr/lib/%s/turtle.py" % python],
    )

PYTHONS = {
    # amd64 only: see debian_packages/bullseye/manifest.yaml.
    "3.9": _python("bullseye", "3.9", merged_usr = False, archs = ["amd64"]),
    "3.11": _python("bookworm", "3.11", merged_usr = True),
    "3.13": _python("trixie", "3.13", merged_usr = True, archs = ["amd64", "arm64", "riscv64"]),
    # Debian testing: its packages move, so the image is tagged 3.14-experimental and never latest.
    # riscv64 too: a Debian release architecture since trixie, as for 3.13.
    "3.14": _python("forky", "3.14", merged_usr = True, experimental = True, archs = ["amd64", "arm64", "riscv64"]),
}
