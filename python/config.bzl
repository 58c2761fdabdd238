"""The Python images: one entry per Python version. Adding a version on a new Debian release is one entry here
plus that release's manifest and lock in debian_packages/<release>/ (README, "adding a Python version").

Each entry: the Debian `distribution` whose lock it uses (debian_packages/<distribution>), the `python`
executable, the stdlib paths to `pruned`, and whether the version is `experimental` (tagged
<version>-experimental and never `latest`). What belongs to the release is not here: its manifest names the
architectures, whether it is merged-/usr, and the packages each image holds, in groups (system, python,
debug, dev), and its lock carries them.
"""

# Where the project's source lives, recorded in each image's org.opencontainers.image.source label;
# left empty (and the label omitted) until the project has a public home.
SOURCE_URL = ""

def _python(distribution, version, experimental = False):
    python = "python" + version
    return struct(
        distribution = distribution,
        python = python,
        experimental = experimental,
        # Only turtle.py: Debian ships the rest of what a server image has no use for in packages the image
        # leaves out. Why each part goes: README.md, "The pruned standard library".
        pruned = ["usr/lib/%s/turtle.py" % python],
    )

PYTHONS = {
    "3.9": _python("bullseye", "3.9"),
    "3.11": _python("bookworm", "3.11"),
    "3.13": _python("trixie", "3.13"),
    # Debian testing: its packages move, so the image is tagged 3.14-experimental and never latest.
    "3.14": _python("forky", "3.14", experimental = True),
}
