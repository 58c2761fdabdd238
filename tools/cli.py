"""The one way this project's command-line tools end on an error.

    @cli.tool("build_layout", LayoutError)
    def main(argv: list[str] | None = None) -> int:
        ...

    if __name__ == "__main__":
        raise SystemExit(main())

The tool's own errors (the exception classes it names, whose messages say what is wrong and how to fix it)
become one line `TOOL: error: MESSAGE` on stderr and exit status 1 (or the tool's `status`), Ctrl-C becomes `TOOL: interrupted` and
130 (128 + SIGINT, as a shell reports it), and `note` (what was or was not written) ends both lines. Any
other exception is a bug and keeps its traceback. `main` stays callable with its arguments, so tests see the
exit status and the message.

Standard library only.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

INTERRUPTED_EXIT = 130
Main = TypeVar("Main", bound=Callable[..., int])


def tool(name: str, *errors: type[BaseException], note: str = "", status: int = 1) -> Callable[[Main], Main]:
    """Decorates a tool's `main`: `errors` become one line and exit `status`, KeyboardInterrupt exit 130."""
    suffix = f"; {note}" if note else ""

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def run(*args: object, **kwargs: object) -> int:
            try:
                return main(*args, **kwargs)
            except errors as error:
                print(f"{name}: error: {error}{suffix}", file=sys.stderr, flush=True)
                return status
            except KeyboardInterrupt:
                print(f"{name}: interrupted{suffix}", file=sys.stderr, flush=True)
                return INTERRUPTED_EXIT

        return run  # type: ignore[return-value]

    return decorate
