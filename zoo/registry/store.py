"""The zoo: a folder (or any fsspec URL) of versioned, content-hashed, verified networks.

Layout (one source of truth: ``index.json``; everything else is referenced from it)::

    <zoo>/index.json                            {"format": 1, "models": {name: {"versions": [...]}}}
    <zoo>/models/<name>/<sha256[:12]>.safetensors
    <zoo>/models/<name>/v<N>.json               config + metrics of version N
    <zoo>/cards/<name>@<N>.md                   model card (+ <name>@<N>.jpg sample)

A version is ``{version, file, sha256, bytes, created, style, config, metrics, card, sample}``;
``name@N`` picks one, ``name`` the latest. Only safetensors are ever loaded, and only after
their sha256 matches the index.

Where the user's zoo lives: ``$STYLE_ZOO_HOME`` (a path or fsspec URL), else
``$XDG_CACHE_HOME/style-zoo/zoo``, else ``~/.cache/style-zoo/zoo``. The models shipped inside
the package (``zoo/builtin``, same layout) form a read-only layer under it: ``list``, ``show``
and ``apply`` see both, and a name in the user's zoo shadows the built-in one of that name
unless ``name@N`` asks for a version only the built-in layer has.

Writers take a file lock (``<zoo>/.index.lock``; for remote URLs a local lock keyed by the URL,
which serialises publishers on this machine only) and replace ``index.json`` atomically (temp
file + rename), so concurrent publishers never lose an entry and a crash mid-publish leaves the
previous index readable. Model files are written before the index names them.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lit_modules.errors import one_line

from .errors import IntegrityError, ModelNotFound, ZooError
from .record import CARD_RE, DERIVED, SAMPLE_RE, VersionRecord, architecture
from .refs import parse_ref, validate_name
from .schema import show

if TYPE_CHECKING:  # torch is imported only when a network is built: zoo list / show stay fast
    from lit_modules.transformer_net import TransformerNet

FORMAT = 1
ENV_HOME = "STYLE_ZOO_HOME"
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "builtin"  # the models shipped in the package
LOCK_TIMEOUT_S = 120
DERIVED_FIELDS = frozenset(DERIVED) - {"origin", "source"}  # the zoo's own; origin and source are its callers'


def default_zoo_url() -> str:
    if os.environ.get(ENV_HOME):
        return os.environ[ENV_HOME]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(cache / "style-zoo" / "zoo")


# The folders that hold a zoo's files; index.json, the lock and temporary files are none of them.
DATA_DIRS = ("models", "cards")


def safe_rel(rel: str) -> str:
    """A path from index.json, checked to name a file in one of the zoo's data folders (models/,
    cards/): never outside the zoo, never index.json, never a hidden or temporary file."""
    p = Path(rel) if isinstance(rel, str) else None
    if p is None or p.is_absolute() or ".." in p.parts or not p.parts:
        raise IntegrityError(f"index names a file outside the zoo ({show(rel)}); refusing it")
    if len(p.parts) < 2 or p.parts[0] not in DATA_DIRS or any(part.startswith(".") for part in p.parts):
        raise IntegrityError(f"index names {show(rel)}, not a file of the zoo's {' or '.join(DATA_DIRS)} folders; refusing it")
    return p.as_posix()


def weights_rel(name: str, sha256: str) -> str:
    """Where a zoo keeps a model's weights: named by the model and the content's hash, nothing else."""
    return f"models/{name}/{sha256[:12]}.safetensors"


@dataclass(frozen=True)
class Entry:
    """One version of one model, and the zoo that holds it."""

    zoo: "Zoo"
    name: str
    info: dict  # the index's version record

    @property
    def version(self) -> int:
        return int(self.info["version"])

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def record(self) -> VersionRecord:
        """The version's record, typed."""
        return VersionRecord(self.info)

    @property
    def config(self) -> dict:
        return self.record.config

    @property
    def family(self) -> str | None:
        """The hash of the convolutions shared with the styles trained together with it, else None."""
        return self.record.family

    def read_weights(self) -> bytes:
        """The model file's bytes, after the sha256 and format checks."""
        rel = safe_rel(self.info["file"])
        if not rel.endswith(".safetensors"):
            raise IntegrityError(f"{self.ref}: {rel} is not a .safetensors file; only safetensors are loaded from a zoo")
        if rel != weights_rel(self.name, str(self.info["sha256"])):
            raise IntegrityError(f"{self.ref}: the index names {rel}, not {weights_rel(self.name, str(self.info['sha256']))} "
                                 "(the file its sha256 gives); re-publish or re-install it")
        try:
            data = self.zoo.read_bytes(rel)
        except FileNotFoundError:
            raise IntegrityError(f"{self.ref}: model file {rel} is missing from {self.zoo.url}") from None
        got = hashlib.sha256(data).hexdigest()
        if got != self.info["sha256"]:
            raise IntegrityError(
                f"{self.ref}: sha256 mismatch for {rel} (file {got[:12]}..., index {self.info['sha256'][:12]}...): "
                "the file was modified or corrupted; re-publish or re-install it"
            )
        check_safetensors_bytes(data, f"{self.ref} ({rel})")
        return data

    def network(self) -> TransformerNet:
        """The verified weights in the network the version's config describes (fp32, eval)."""
        data = self.read_weights()
        try:
            return network_from_bytes(data, self.config)
        except IntegrityError as e:
            raise type(e)(f"{self.ref}: {e}") from None

    def card_text(self) -> str:
        card = self.record.card
        if card is None and self.info.get("card"):
            raise IntegrityError(f"{self.ref}: the index names {show(self.info['card'])} as its card, not a "
                                 "cards/<name>@<N>.md of the zoo; refusing it")
        if card is None:
            raise ModelNotFound(f"{self.ref} has no model card")
        try:
            return self.zoo.read_bytes(safe_rel(card)).decode("utf-8")
        except FileNotFoundError:
            raise ModelNotFound(f"{self.ref}: its card {card} is missing from {self.zoo.url}") from None
        except UnicodeDecodeError:
            raise IntegrityError(f"{self.ref}: its card {card} is not UTF-8 text") from None


def check_safetensors_bytes(data: bytes, what: str) -> None:
    """Refuse anything that is not a safetensors file (a pickle renamed .safetensors, a zip...)."""
    ok = len(data) >= 10
    if ok:
        n = int.from_bytes(data[:8], "little")
        ok = 2 <= n <= len(data) - 8 and data[8:9] == b"{"
        if ok:
            try:
                ok = isinstance(json.loads(data[8 : 8 + n]), dict)
            except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep to parse
                ok = False
    if not ok:
        kind = "a pickle/zip (torch.save) file" if data[:2] in (b"PK", b"\x80\x02", b"\x80\x04", b"\x80\x05") else "not safetensors"
        raise IntegrityError(f"{what} is {kind}; only safetensors are ever loaded from a zoo (no unpickling)")


# Bytes per element of each safetensors dtype: the canonical layout puts wider ones first (aligned).
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def safetensors_header(data: bytes) -> dict:
    """The JSON header of bytes that passed ``check_safetensors_bytes`` (a JSON object)."""
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])


def tensor_shapes(data: bytes) -> dict[str, tuple[int, ...]]:
    """{name: shape} from a safetensors header, without reading a tensor."""
    shapes = {}
    for k, v in safetensors_header(data).items():
        if k == "__metadata__":
            continue
        shape = v.get("shape") if isinstance(v, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise IntegrityError(f"the safetensors header gives tensor {show(k)} no valid shape")
        shapes[k] = tuple(shape)
    return shapes


def canonical_safetensors(data: bytes) -> bytes:
    """The same tensors and metadata in one byte layout, so equal weights always give equal bytes and
    sha256: the safetensors writer emits its metadata map in a random order (a hash map's)."""
    header = safetensors_header(data)
    meta = header.pop("__metadata__", None)
    body = data[8 + int.from_bytes(data[:8], "little") :]
    try:
        order = sorted(header, key=lambda k: (-DTYPE_BYTES[header[k]["dtype"]], k))
    except (KeyError, TypeError):
        raise IntegrityError("cannot lay out safetensors weights: an unknown dtype or a malformed header") from None
    out_header: dict = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    chunks, offset = [], 0
    for k in order:
        start, end = header[k]["data_offsets"]
        chunks.append(body[start:end])
        out_header[k] = {"dtype": header[k]["dtype"], "shape": header[k]["shape"], "data_offsets": [offset, offset + end - start]}
        offset += end - start
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the writer's own files do
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def network_from_bytes(data: bytes, config: dict) -> TransformerNet:
    """A TransformerNet from verified safetensors bytes and a version's config (fp32, eval).

    The config is checked first and the network it describes is compared with the weights' header
    on the meta device (no memory), so a config that disagrees with its weights builds nothing."""
    import torch
    from safetensors.torch import load as st_load

    from lit_modules.transformer_net import TransformerNet, nonfinite_key

    arch = architecture(config)
    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in TransformerNet.from_config(arch).state_dict().items()}
    got = tensor_shapes(data)
    if got != want:
        raise IntegrityError(f"weights do not fit TransformerNet(width={arch['width']:g}, num_residual={arch['num_residual']}"
                             f"{', styles=' + str(arch['styles']) if arch['styles'] > 1 else ''}): {shape_mismatch(want, got)}")
    net = TransformerNet.from_config(arch)
    try:
        state = st_load(data)
    except Exception as e:
        raise IntegrityError(f"cannot read safetensors weights ({type(e).__name__}: {one_line(e, 120)})") from None
    bad = nonfinite_key(state)
    if bad is not None:
        raise IntegrityError(f"weights hold NaN or infinite values (tensor {show(bad)}); refusing them")
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise IntegrityError(f"weights do not fit TransformerNet(width={net.width}): {one_line(e, 160)}") from None
    return net.eval().requires_grad_(False)


def shape_mismatch(want: dict[str, tuple], got: dict[str, tuple]) -> str:
    """The first difference between the tensors a network expects and those a file holds, in words."""
    missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    if missing:
        return f"{len(missing)} tensors missing (first {missing[0]})"
    if extra:
        return f"{len(extra)} unexpected tensors (first {show(extra[0])})"
    k = next(k for k in want if want[k] != got[k])
    return f"{k} is {list(got[k])} in the file, {list(want[k])} in the network"


class Zoo:
    """One zoo location (local folder or fsspec URL)."""

    def __init__(self, url: str | os.PathLike | None = None, readonly: bool = False) -> None:
        url = str(url) if url is not None else default_zoo_url()
        self.url = url
        self.readonly = readonly
        if "://" in url and not url.startswith("file://"):
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(url)
            self.local: Path | None = None
        else:
            self.fs = None
            self.local = Path(url.removeprefix("file://")).expanduser()
            self.root = str(self.local)

    def __repr__(self) -> str:
        return f"Zoo({self.url!r})"

    # -- raw file access ------------------------------------------------------------------------
    def _path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}"

    def read_bytes(self, rel: str) -> bytes:
        if self.local is not None:
            return (self.local / rel).read_bytes()
        with self.fs.open(self._path(rel), "rb") as f:
            return f.read()

    def exists(self, rel: str) -> bool:
        if self.local is not None:
            return (self.local / rel).exists()
        return self.fs.exists(self._path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomic: temp file beside the target, fsync, rename."""
        if self.readonly:
            raise ZooError(f"{self.url} is read-only")
        if self.local is not None:
            target = self.local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            path = self._path(rel)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(tmp, "wb") as f:
                f.write(data)
            self.fs.mv(tmp, path)

    def remove(self, rel: str) -> None:
        """Delete one file (gone already is fine)."""
        if self.readonly:
            raise ZooError(f"{self.url} is read-only")
        if self.local is not None:
            (self.local / rel).unlink(missing_ok=True)
        elif self.fs.exists(self._path(rel)):
            self.fs.rm(self._path(rel))

    # -- index ----------------------------------------------------------------------------------
    def read_index(self) -> dict:
        try:
            raw = self.read_bytes("index.json")
        except FileNotFoundError:
            return {"format": FORMAT, "models": {}}
        try:
            data = json.loads(raw)
        except ValueError:
            raise ZooError(f"{self.url}/index.json is not valid JSON; restore it from a backup") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
            raise ZooError(f"{self.url}/index.json has an unknown format (expected format {FORMAT})")
        return data

    def _lock(self):
        from filelock import FileLock

        if self.readonly:
            raise ZooError(f"{self.url} is read-only")
        if self.local is not None:
            self.local.mkdir(parents=True, exist_ok=True)
            path = self.local / ".index.lock"
        else:
            d = Path(default_zoo_url() if "://" not in default_zoo_url() else Path.home() / ".cache" / "style-zoo")
            d.mkdir(parents=True, exist_ok=True)
            path = d / f".remote-{hashlib.sha256(self.url.encode()).hexdigest()[:16]}.lock"
        return FileLock(str(path), timeout=LOCK_TIMEOUT_S)

    def _write_index(self, data: dict) -> None:
        self.write_bytes("index.json", (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())

    def names(self) -> list[str]:
        return sorted(self.read_index()["models"])

    def versions(self, name: str) -> list[dict]:
        return list(self.read_index()["models"].get(name, {}).get("versions", []))

    def find(self, name: str, version: int | None = None) -> Entry | None:
        versions = self.versions(name)
        if not versions:
            return None
        if version is None:
            return Entry(self, name, max(versions, key=lambda v: v["version"]))
        for v in versions:
            if v["version"] == version:
                return Entry(self, name, v)
        return None

    # -- writing --------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        weights: bytes,
        record: dict,
        extra_files: Callable[[int], dict[str, bytes]] | None = None,
    ) -> Entry:
        """Add the next version of ``name``: weights file, ``v<N>.json``, extra files, then the index.

        ``record`` is the version's metadata (style, config, metrics, ...); ``extra_files(N)``
        returns further files to write (card, sample) keyed by zoo-relative path, given the
        version number assigned under the lock. The zoo derives every path, number and time of the
        entry itself: the record's own (``DERIVED_FIELDS``) are dropped.
        """
        validate_name(name)
        check_safetensors_bytes(weights, f"model {name}")
        sha = hashlib.sha256(weights).hexdigest()
        file_rel = weights_rel(name, sha)
        with self._lock():
            index = self.read_index()
            model = index["models"].setdefault(name, {"versions": []})
            version = max((v["version"] for v in model["versions"]), default=0) + 1
            # the card is rendered before anything is written: if that fails, no file is left behind
            files = {safe_rel(rel): data for rel, data in (extra_files(version) if extra_files else {}).items()}
            if not self.exists(file_rel):
                self.write_bytes(file_rel, weights)
            info = {
                **{k: v for k, v in record.items() if k not in DERIVED_FIELDS},
                "version": version,
                "file": file_rel,
                "sha256": sha,
                "bytes": len(weights),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "card": next((r for r in files if CARD_RE.fullmatch(r)), None),
                "sample": next((r for r in files if SAMPLE_RE.fullmatch(r)), None),
            }
            for rel, data in files.items():
                self.write_bytes(rel, data)
            self.write_bytes(f"models/{name}/v{version}.json", (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
            model["versions"].append(info)
            self._write_index(index)
        return Entry(self, name, info)

    def update(self, name: str, version: int, changes: dict, extra_files: dict[str, bytes] | None = None) -> Entry:
        """Merge ``changes`` into a version's record (e.g. metrics) and rewrite its card or sample
        (``extra_files``: ``cards/<name>@<N>.md`` / ``.jpg``), under the lock."""
        with self._lock():
            index = self.read_index()
            versions = index["models"].get(name, {}).get("versions", [])
            info = next((v for v in versions if v["version"] == version), None)
            if info is None:
                raise ModelNotFound(f"{name}@{version} is not in {self.url}")
            info.update(changes)
            for rel, data in (extra_files or {}).items():
                if not (CARD_RE.fullmatch(rel) or SAMPLE_RE.fullmatch(rel)):
                    raise IntegrityError(f"{name}@{version}: {show(rel)} is not a card or sample path of the zoo; refusing it")
                self.write_bytes(safe_rel(rel), data)
            self.write_bytes(f"models/{name}/v{version}.json", (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
            self._write_index(index)
        return Entry(self, name, info)


class ZooStack:
    """The user's zoo over the read-only built-in layer (what list/show/apply see)."""

    def __init__(self, url: str | os.PathLike | None = None, builtin: bool = True) -> None:
        self.user = Zoo(url)
        self.layers = [self.user]
        if builtin and BUILTIN_DIR.is_dir() and Path(self.user.root).resolve() != BUILTIN_DIR:
            self.layers.append(Zoo(BUILTIN_DIR, readonly=True))

    def entries(self, all_versions: bool = False) -> list[tuple[Entry, str]]:
        """(entry, layer label) for every model (latest version unless ``all_versions``), shadowing applied."""
        out, seen = [], set()
        for i, zoo in enumerate(self.layers):
            label = "user" if i == 0 else "built-in"
            for name in zoo.names():
                if name in seen and not all_versions:
                    continue
                versions = sorted(zoo.versions(name), key=lambda v: v["version"])
                if not versions:
                    continue
                seen.add(name)
                for v in versions if all_versions else versions[-1:]:
                    out.append((Entry(zoo, name, v), label))
        return sorted(out, key=lambda e: (e[0].name, e[1] != "user", e[0].version))

    def resolve(self, ref: str) -> Entry:
        """``name`` or ``name@N`` -> Entry; unknown names/versions raise one line with close matches."""
        name, version = parse_ref(ref)
        for zoo in self.layers:
            entry = zoo.find(name, version)
            if entry is not None:
                return entry
        known = sorted({n for zoo in self.layers for n in zoo.names()})
        if name in known:
            vs = sorted({v["version"] for zoo in self.layers for v in zoo.versions(name)})
            raise ModelNotFound(f"{name} has no version {version}; available: {', '.join(f'{name}@{v}' for v in vs)}")
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        where = " + ".join(z.url for z in self.layers)
        listing = f"known: {', '.join(known)}" if known else "the zoo is empty (publish one with: zoo publish RUN --name NAME)"
        raise ModelNotFound(f"no model {name!r} in {where}; {hint}{listing}")

