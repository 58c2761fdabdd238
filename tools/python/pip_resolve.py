"""Runs pip with the image's marker environment: `python3 -m tools.python.pip_resolve ENVIRONMENT_JSON PIP_ARGS...`.

pip's `--platform`, `--python-version`, `--implementation` and `--abi` choose wheels for another interpreter,
but pip still evaluates environment markers (`; platform_machine == "aarch64"`, `; python_version < "3.14"`)
against the interpreter running it: the build root's, not the image's. This replaces the marker environment
of pip's own vendored `packaging` with the image's (ENVIRONMENT_JSON, PEP 508's variable names) and then runs
pip's own command line unchanged, so the resolver, the wheel choice and `--report` are pip's.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    environment = json.loads(argv[0])
    try:
        from pip._internal.cli.main import main as pip_main  # type: ignore[import-not-found]
        from pip._vendor.packaging import markers  # type: ignore[import-not-found]
    except ImportError:
        print("pip_resolve: error: pip is not installed for this python3; the lock uses pip's resolver", file=sys.stderr)
        return 2
    # Marker.evaluate() reads this module-level function for every marker pip evaluates.
    markers.default_environment = lambda: dict(environment)
    return int(pip_main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
