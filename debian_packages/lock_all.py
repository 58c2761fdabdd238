"""Locks every distribution under debian_packages/, or what the arguments name."""

import sys

from tools.debian import lock

if __name__ == "__main__":
    sys.exit(lock.main(sys.argv[1:] or ["--all", "debian_packages"]))
