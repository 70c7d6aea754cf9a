"""Output folders a tool may replace: only those it made itself.

A tool that rebuilds an output folder first checks that the folder is empty
or carries its marker file; a user's own folder (their dataset, their work
dir) is refused with a message naming it, unless the user passes
``--overwrite``. The marker is written when the tool creates the folder.
"""
import json
import shutil
from pathlib import Path
from typing import Iterable, Optional, Union

PathLike = Union[str, Path]
MARKER = '.s5_mm_owner.json'


class NotOwnedError(FileExistsError):
    """The folder holds files that no s5_mm tool wrote."""


def _has_content(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir()) or path.is_file()


def owner(folder: PathLike) -> Optional[str]:
    """The tool named in ``folder``'s marker, or None."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text()).get('tool')
    except (ValueError, AttributeError):
        return None


def mark_owned(folder: PathLike, tool: str) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps(dict(tool=tool)))


def check_replaceable(folder: PathLike, tool: str,
                      parts: Iterable[str] = (), overwrite: bool = False,
                      legacy_owned: bool = False) -> None:
    """Raise :class:`NotOwnedError` unless ``tool`` may delete ``parts`` of
    ``folder`` (the whole folder when ``parts`` is empty).

    Allowed when: nothing is there, ``folder`` carries ``tool``'s marker,
    ``legacy_owned`` (a caller's own proof, e.g. an older version's
    metadata file), or ``overwrite``.
    """
    folder = Path(folder)
    parts = list(parts)
    targets = [folder / p for p in parts] if parts else [folder]
    present = [t for t in targets if _has_content(t)]
    if not present or overwrite or legacy_owned or owner(folder) == tool:
        return
    names = ', '.join(str(t) for t in present)
    raise NotOwnedError(
        f'{tool} would replace {names}, which it did not create (no '
        f'{MARKER} from {tool} in {folder}). Nothing was changed. Pass '
        '--overwrite to replace it, or choose another output folder.')


def replace_parts(folder: PathLike, tool: str, parts: Iterable[str] = (),
                  overwrite: bool = False,
                  legacy_owned: bool = False) -> None:
    """Check, delete ``parts`` of ``folder`` (or its whole content), then
    mark the folder as ``tool``'s."""
    folder = Path(folder)
    parts = list(parts)
    check_replaceable(folder, tool, parts, overwrite, legacy_owned)
    if parts:
        for p in parts:
            target = folder / p
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    mark_owned(folder, tool)
