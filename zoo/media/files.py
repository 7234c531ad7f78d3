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


def output_name(src: Path, output: Path | None, out_dir: Path | None, suffix: str, ext: str) -> Path:
    """Where ``src``'s result goes: ``output`` (-o), else ``out_dir/<stem><ext>``, else
    ``<stem>_<suffix><ext>`` beside the input. Nothing is created."""
    if output is not None:
        return output
    if out_dir is not None:
        return out_dir / f"{src.stem}{ext}"
    return src.with_name(f"{src.stem}_{suffix}{ext}")


def output_path(src: Path, output: Path | None, out_dir: Path | None, suffix: str, ext: str) -> Path:
    """``output_name``, with ``out_dir`` made if it is used."""
    if output is None and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    return output_name(src, output, out_dir, suffix, ext)


def shared_output(inputs: list[Path], outputs: list[Path]) -> tuple[Path, Path, Path] | None:
    """The first two inputs planned to write the same file, and that file (None if all differ):
    within one run the second would silently replace the first."""
    seen: dict[str, Path] = {}
    for src, dst in zip(inputs, outputs):
        key = os.path.normcase(Path(dst).resolve())  # resolved: two spellings of one folder are one folder
        if key in seen:
            return seen[key], src, dst
        seen[key] = src
    return None
