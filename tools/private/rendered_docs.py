"""Keeps the rule reference in docs/ equal to what stardoc renders from the rules' own doc strings.

    tools/bazel run //docs:update       writes every page stardoc rendered into docs/
    tools/bazel test //docs:docs_test   fails, naming each page that differs, when one was not regenerated

Each PAGE argument is RENDERED=CHECKED_IN: the page stardoc rendered (a path in the runfiles) and the page's
path in the workspace (docs/oci.md), which a test also has in its runfiles. `--readme` names the README, which
must link every page.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.atomic_file import write_atomically

REGENERATE = "tools/bazel run //docs:update"


class DocsError(Exception):
    """A page that cannot be read or written; the message names it."""


@dataclass(frozen=True)
class Page:
    rendered: Path  # what stardoc made, in the runfiles
    checked_in: str  # its path in the workspace, e.g. docs/oci.md


def parse_page(argument: str) -> Page:
    rendered, separator, checked_in = argument.partition("=")
    if not separator or not rendered or not checked_in:
        raise DocsError(f"'{argument}' is not RENDERED=CHECKED_IN")
    return Page(Path(rendered), checked_in)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise DocsError(f"cannot read {path} ({error.strerror})") from None


def stale_pages(pages: list[Page], workspace: Path) -> list[str]:
    """One message per page whose checked-in copy under `workspace` is missing or not what stardoc rendered."""
    messages = []
    for page in pages:
        wanted = read(page.rendered)
        path = workspace / page.checked_in
        if not path.is_file():
            messages.append(f"{page.checked_in} is missing")
            continue
        have = path.read_text(encoding="utf-8")
        if have != wanted:
            diff = difflib.unified_diff(have.splitlines(), wanted.splitlines(), f"{page.checked_in} (checked in)",
                                        f"{page.checked_in} (rendered)", lineterm="", n=1)
            shown = list(diff)
            more = f"\n  ... {len(shown) - 20} more diff lines" if len(shown) > 20 else ""
            messages.append(f"{page.checked_in} differs from the rule docs:\n  " + "\n  ".join(shown[:20]) + more)
    return messages


def unlinked_pages(pages: list[Page], readme: str) -> list[str]:
    """The pages the README's text never links to."""
    return [page.checked_in for page in pages if f"({page.checked_in})" not in readme]


def write_pages(pages: list[Page], workspace: Path) -> list[str]:
    """Writes each page whose checked-in copy differs; returns the paths written."""
    written = []
    for page in pages:
        wanted = read(page.rendered)
        path = workspace / page.checked_in
        if path.is_file() and path.read_text(encoding="utf-8") == wanted:
            continue
        write_atomically(path, wanted)
        written.append(page.checked_in)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("check", "write"))
    parser.add_argument("--readme", type=Path, help="the README, which must link every page (check only)")
    parser.add_argument("pages", nargs="+", metavar="PAGE", help="RENDERED=CHECKED_IN")
    args = parser.parse_args(argv)
    try:
        pages = [parse_page(argument) for argument in args.pages]
        if args.mode == "write":
            workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
            if not workspace:
                raise DocsError(f"run it with `{REGENERATE}`, which says where the workspace is")
            written = write_pages(pages, Path(workspace))
            print(f"wrote {', '.join(written)}" if written else f"all {len(pages)} pages were current")
            return 0
        # A test's runfiles hold the checked-in pages at their workspace paths.
        problems = stale_pages(pages, Path.cwd())
        if args.readme:
            problems += [f"README.md does not link {page}" for page in unlinked_pages(pages, read(args.readme))]
    except DocsError as error:
        print(f"rendered_docs: error: {error}", file=sys.stderr)
        return 1
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"The rule reference in docs/ is stale: regenerate it with `{REGENERATE}` and commit docs/.",
              file=sys.stderr)
        return 1
    print(f"docs/: all {len(pages)} pages match the rule docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
