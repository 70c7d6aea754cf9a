"""Write-then-rename: an output appears under its final name only complete.

A run that fails or is killed leaves the earlier file of that name as it
was, plus at most a hidden ``.<name>.partial-*`` file in the same folder
(same file system, so the rename is atomic).
"""
import contextlib
import os
import uuid
from typing import Iterator

PARTIAL_TAG = '.partial-'


def partial_path(final) -> str:
    """A unique temporary name beside ``final``."""
    final = os.fspath(final)
    folder, name = os.path.split(final)
    return os.path.join(folder,
                        f'.{name}{PARTIAL_TAG}{uuid.uuid4().hex[:8]}')


def is_partial(name: str) -> bool:
    base = os.path.basename(name)
    return base.startswith('.') and PARTIAL_TAG in base


def fsync_file(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(partial, final, sync: bool = True) -> None:
    """Move a finished ``partial`` file onto ``final``."""
    if sync:
        fsync_file(partial)
    os.replace(partial, final)


def discard(partial) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)


@contextlib.contextmanager
def atomic_output(final, sync: bool = False) -> Iterator[str]:
    """Yield a partial path to write; on success it replaces ``final``, on
    an error it is removed and ``final`` is left untouched."""
    tmp = partial_path(final)
    try:
        yield tmp
    except BaseException:
        discard(tmp)
        raise
    commit(tmp, final, sync=sync)


def write_text_atomic(path, text: str) -> None:
    with atomic_output(path, sync=True) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
