"""The one way this project replaces a file: readers see the old contents or the new, never a partial file.

The data goes to a temporary file beside the target (the same file system, so the rename is atomic), with a
unique name (so several writers at once do not collide), which `os.replace` then puts in the target's place.
On any error, Ctrl-C included, the temporary file is removed and the target is left as it was.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` (with `mode`) when the `with` block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise


def write_atomically(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replaces `path` with `data` (text is written as UTF-8)."""
    with atomic_writer(path, mode) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
