"""Output names, and temp files for atomic writes that end up with the permissions of any other new file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    try:  # Linux reads it without changing it (no race with another thread creating a file)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)  # elsewhere the only way to read it is to set it: put it straight back
        os.umask(mask)
        return mask


def mkstemp_beside(dest: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, path) of a new hidden temp file in ``dest``'s folder, to be renamed over ``dest``.

    ``tempfile.mkstemp`` makes it 0600, which the rename would carry to the user's output (a
    stylised photo nobody else, nor a web server, could read): set 0666 minus the umask instead.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def output_path(src: Path, output: Path | None, out_dir: Path | None, suffix: str, ext: str) -> Path:
    """Where ``src``'s result goes: ``output`` (-o), else ``out_dir/<stem><ext>`` (the folder made),
    else ``<stem>_<suffix><ext>`` beside the input."""
    if output is not None:
        return output
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        return out_dir / f"{src.stem}{ext}"
    return src.with_name(f"{src.stem}_{suffix}{ext}")
