"""The names, tags and versions the image matrix computes: pure functions, unit-tested in naming_test.bzl."""

def upstream_version(debian_version):
    """The upstream part of a Debian version: 3.9.2-1+deb11u1 -> 3.9.2, 1:3.13.5-2 -> 3.13.5."""
    return debian_version.split(":")[-1].split("-")[0].split("+")[0]

def target_name(version, arch, variant):
    """The per-architecture image target: 3.9, amd64, -debug-nonroot -> 3.9_amd64_debug_nonroot."""
    return "%s_%s%s" % (version, arch, variant.replace("-", "_"))

def tag(version, variant, experimental):
    """The tag :push gives an image: 3.9-nonroot, or 3.14-experimental-debug for an experimental version."""
    return version + ("-experimental" if experimental else "") + variant

def newest_stable(pythons):
    """The newest version (compared numerically, 3.13 > 3.9) whose entry is not experimental; None if none."""
    stable = [version for version in pythons if not pythons[version].experimental]
    if not stable:
        return None
    return sorted(stable, key = lambda version: [int(part) for part in version.split(".")])[-1]

def dated_tag(python_version, archive_date, variant, experimental):
    """The tag that never moves: the Python patch version and the lock's archive date, 3.13.5-20261125-nonroot."""
    return tag(python_version, "-" + archive_date + variant, experimental)

def archive_date(archive_state):
    """The day of a lock's archive state: 20261125T022230Z -> 20261125."""
    return archive_state.split("T")[0]

def tags(version, variant, experimental, newest, python_version, archive_state):
    """Every tag of one image: its own (3.13-nonroot), its Python patch version's (3.13.5-nonroot), the dated one
    (dated_tag), and `latest<variant>` for the newest stable version."""
    return [
        tag(version, variant, experimental),
        tag(python_version, variant, experimental),
        dated_tag(python_version, archive_date(archive_state), variant, experimental),
    ] + (["latest" + variant] if version == newest else [])
