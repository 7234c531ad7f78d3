"""Share zoo versions: a version <-> a Hub-shaped folder on the Hugging Face Hub or any fsspec URL.

The folder (one model version; the same on the Hub and under an fsspec URL)::

    model.safetensors     the weights, byte for byte as in the zoo (sha256 in config.json)
    config.json           {"style_zoo": {format, name, version, sha256, bytes}, "record": <the version's
                          record, v<N>.json, without zoo paths>}: everything ``apply`` needs
    README.md             a Hub model card: YAML header (library_name, pipeline_tag, tags, licence,
                          datasets, painting) followed by our card (zoo/registry/cards.py)
    sample.jpg            the card's sample picture, when the version has one

Targets: ``hf:OWNER/REPO`` (``huggingface_hub``: create_repo, upload_folder, create_tag ``v<N>``;
``snapshot_download`` to pull, honouring ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE``) or an fsspec URL
(``file://``, ``memory://``, ``s3://``...), where the folder sits at the URL's root (the latest push)
and again under ``tags/v<N>/``. ``SOURCE@REV`` pulls a tag, branch or commit.

A pull checks everything before the zoo is touched: the marker and format, the whole of
``config.json`` against a schema (``META`` here, ``zoo.registry.record.PULLED_RECORD`` for the
record: types, ranges, known fields, and no path, number or time the zoo derives itself), each file
present, the weights' sha256, that they are safetensors, and that they load into the network their
config describes (``zoo.registry.store.network_from_bytes``, the same loader ``zoo apply`` uses).
A refused pull leaves the zoo as it was, byte for byte, and says why in one line.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

from lit_modules.errors import one_line
from zoo.registry import cards
from zoo.registry.errors import HubError, IntegrityError, InvalidRecord, ZooError
from zoo.registry.record import DERIVED, HEX64, VersionRecord, pulled_record
from zoo.registry.refs import Target, parse_target, validate_name
from zoo.registry.schema import integer, obj, show, text
from zoo.registry.store import Zoo, ZooStack, check_safetensors_bytes, network_from_bytes, safe_rel

from .publish import card_files

FORMAT = 1
LIBRARY = "style-zoo"
WEIGHTS, CONFIG, README, SAMPLE = "model.safetensors", "config.json", "README.md", "sample.jpg"
# Zoo-specific fields of a version record that do not travel (paths, numbering, timestamps, where
# it came from, the publisher's checkpoint): the receiving zoo derives its own.
LOCAL_FIELDS = tuple(DERIVED)
CONFIG_MAX_BYTES = 1 << 20  # a pushed config.json is a few kB
# config.json's "style_zoo" section: what identifies the pushed version.
META = obj({"format": integer(0, 2**31), "library": text(40), "name": text(200), "version": integer(1, 10**9),
            "sha256": HEX64, "bytes": integer(0, 1 << 40), "file": text(len(WEIGHTS), re.compile(re.escape(WEIGHTS)), repr(WEIGHTS))},
           required=("format", "library", "name", "version", "sha256"))
HUB_LICENSES = {"mit", "apache-2.0", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                "openrail", "bsd-3-clause", "other"}


# ------------------------------------------------------------------------------------------------
# the folder
# ------------------------------------------------------------------------------------------------
def _hub_license(record: dict) -> dict:
    lic = str(record.get("license") or "").strip()
    if lic.lower() in HUB_LICENSES and lic.lower() != "other":
        return {"license": lic.lower()}
    return {"license": "other", "license_name": "style-zoo-weights"}  # the full text is in the card


def _datasets(config: dict) -> list[str]:
    data = str(config.get("data") or "")
    if data.startswith("hf:"):
        return [data[3:]]
    return ["photos-1k" if "photos-1k" in data else (Path(data).name or "unknown")]


def hub_card(name: str, info: dict, sample: str | None) -> str:
    """README.md: the Hub's YAML header (via huggingface_hub.ModelCardData) + our card's text."""
    from huggingface_hub import ModelCardData

    style = VersionRecord(info).style
    painting = {k: style[k] for k in ("name", "title", "artist", "year", "license", "sha256") if style.get(k)}
    tags = ["style-transfer", "neural-style-transfer", "fast-style-transfer", "image-to-image", LIBRARY]
    tags += [f"style-{style['name']}"] if style.get("name") else []
    lic = _hub_license(info)
    data = ModelCardData(library_name=LIBRARY, pipeline_tag="image-to-image", tags=tags, datasets=_datasets(VersionRecord(info).config),
                         **lic, base_painting=painting, style_zoo={"name": name, "version": info.get("version"), "sha256": info.get("sha256")})
    body = cards.render(name, info, sample)
    body = body[body.index("\n---", 4) + 4:].lstrip("\n")  # our card without its own front matter
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def build_folder(entry) -> dict[str, bytes]:
    """The Hub-shaped folder of a zoo version, as {file name: bytes} (weights verified on read)."""
    weights = entry.read_weights()
    info = dict(entry.info)
    record = {k: v for k, v in info.items() if k not in LOCAL_FIELDS}
    if isinstance(record.get("training"), dict):  # nor the publisher's run folders
        record["training"] = {k: v for k, v in record["training"].items() if k not in ("checkpoint", "run_dir")}
    try:  # what no zoo would pull is not pushed
        record = pulled_record(record)
    except InvalidRecord as e:
        raise InvalidRecord(f"{entry.ref} cannot be pushed: {e}") from None
    files = {WEIGHTS: weights}
    sample = None
    if entry.record.sample:
        try:
            files[SAMPLE] = entry.zoo.read_bytes(safe_rel(entry.record.sample))
            sample = SAMPLE
        except FileNotFoundError:
            pass
    meta = {"format": FORMAT, "library": LIBRARY, "name": entry.name, "version": entry.version,
            "sha256": info["sha256"], "bytes": len(weights), "file": WEIGHTS}
    files[CONFIG] = (json.dumps({"style_zoo": meta, "record": record}, indent=1, sort_keys=True) + "\n").encode()
    files[README] = hub_card(entry.name, {**info, "file": WEIGHTS}, sample).encode()
    return files


# ------------------------------------------------------------------------------------------------
# push
# ------------------------------------------------------------------------------------------------
def push(ref: str, target: str, zoo: str | None = None, private: bool = False, api=None) -> dict:
    """Publish ``name[@N]`` to ``hf:OWNER/REPO`` or an fsspec URL; the version becomes tag ``v<N>``."""
    t = parse_target(target, allow_revision=False)
    entry = ZooStack(zoo).resolve(ref)
    files = build_folder(entry)
    tag = f"v{entry.version}"
    if t.kind == "hf":
        commit = _push_hf(t.where, files, tag, entry.ref, private, api)
    else:
        commit = None
        _push_fsspec(t.where, files, tag)
    return {"ref": entry.ref, "target": t.label, "tag": tag, "files": sorted(files), "commit": commit,
            "bytes": sum(len(b) for b in files.values())}


HINTS = {  # huggingface_hub error class -> what the user should know (its own messages span many lines)
    "LocalEntryNotFoundError": "not in the local Hugging Face cache, and the Hub cannot be reached (or HF_HUB_OFFLINE=1)",
    "IncompleteSnapshotError": "the cached copy is incomplete, and the Hub cannot be reached (or HF_HUB_OFFLINE=1)",
    "RepositoryNotFoundError": "no such repo, or it is private (log in with `hf auth login` or set HF_TOKEN)",
    "RevisionNotFoundError": "no such tag, branch or commit in the repo",
    "GatedRepoError": "the repo is gated: accept its terms on the Hub first",
}


def _hub_call(what: str, fn, *args, **kwargs):
    """Run one huggingface_hub call; its failures (network, auth, missing repo) become one line."""
    try:
        return fn(*args, **kwargs)
    except HubError:
        raise
    except Exception as e:  # noqa: BLE001 - the Hub client raises many types; the user needs one line
        kind = type(e).__name__
        msg = HINTS.get(kind) or (one_line(e, 200) if str(e).strip() else "")
        raise HubError(f"{what}: {msg + ' ' if msg else ''}({kind})") from None


def _push_hf(repo: str, files: dict[str, bytes], tag: str, ref: str, private: bool, api) -> str | None:
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(library_name=LIBRARY)
    _hub_call(f"cannot create hf:{repo}", api.create_repo, repo, private=private, exist_ok=True)
    refs = _hub_call(f"cannot list the tags of hf:{repo}", api.list_repo_refs, repo)
    if tag in {getattr(r, "name", r) for r in getattr(refs, "tags", [])}:
        raise HubError(f"hf:{repo} already has tag {tag}; push another version or to another repo")
    with tempfile.TemporaryDirectory(prefix="style-zoo-push-") as tmp:
        for name, data in files.items():
            Path(tmp, name).write_bytes(data)
        info = _hub_call(f"cannot upload to hf:{repo}", api.upload_folder, repo_id=repo, folder_path=tmp,
                         commit_message=f"style-zoo: {ref}", delete_patterns=["*.safetensors", SAMPLE])
    commit = getattr(info, "oid", None)
    _hub_call(f"cannot tag hf:{repo}", api.create_tag, repo, tag=tag, revision=commit, tag_message=f"style-zoo {ref}")
    return commit


def _fsspec(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as e:
        raise HubError(f"{url}: cannot open ({type(e).__name__}: {one_line(e, 160) if str(e) else ''})") from None


def _push_fsspec(url: str, files: dict[str, bytes], tag: str) -> None:
    """Write the folder at ``url`` and under ``url/tags/<tag>``; config.json last (it marks a complete folder)."""
    if Zoo(url).exists(f"tags/{tag}/{CONFIG}"):
        raise HubError(f"{url} already has tag {tag}; push another version or to another URL")
    order = [n for n in files if n != CONFIG] + [CONFIG]
    out = Zoo(url)  # its atomic writes (temp + rename) work for local folders and fsspec alike
    try:
        for prefix in (f"tags/{tag}/", ""):
            for name in order:
                out.write_bytes(prefix + name, files[name])
        if SAMPLE not in files and out.exists(SAMPLE):  # a stale sample of an earlier push
            out.remove(SAMPLE)
    except OSError as e:
        raise HubError(f"cannot write to {url}: {type(e).__name__}: {one_line(e, 160) if str(e) else ''}") from None


# ------------------------------------------------------------------------------------------------
# pull
# ------------------------------------------------------------------------------------------------
def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on")


def _download_hf(t: Target) -> tuple[dict[str, bytes], str | None]:
    """Files of the repo at the revision, through huggingface_hub's cache; (files, commit)."""
    from huggingface_hub import constants, snapshot_download

    offline = _truthy(os.environ.get("HF_HUB_OFFLINE")) or bool(constants.HF_HUB_OFFLINE)
    path = _hub_call(f"cannot download hf:{t.label[3:]}", snapshot_download, t.where, revision=t.revision,
                     cache_dir=os.environ.get("HF_HUB_CACHE") or None, local_files_only=offline,
                     allow_patterns=[WEIGHTS, CONFIG, README, SAMPLE], library_name=LIBRARY)
    folder = Path(path)
    files = {n: (folder / n).read_bytes() for n in (WEIGHTS, CONFIG, README, SAMPLE) if (folder / n).is_file()}
    return files, folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None


def _download_fsspec(t: Target) -> dict[str, bytes]:
    fs, root = _fsspec(t.where)
    base = root.rstrip("/") + (f"/tags/{t.revision}" if t.revision else "")
    if t.revision and not fs.exists(base):
        raise HubError(f"{t.label}: no tag {t.revision} (pushed versions are tags/v<N>)")
    files = {}
    for name in (WEIGHTS, CONFIG, README, SAMPLE):
        try:
            with fs.open(f"{base}/{name}", "rb") as f:
                files[name] = f.read()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise HubError(f"cannot read {t.label}/{name}: {type(e).__name__}") from None
    return files


def read_config(files: dict[str, bytes], label: str) -> tuple[dict, dict]:
    """(style_zoo meta, record) of a downloaded folder's config.json, checked against the schema."""
    if CONFIG not in files:
        if not files:
            raise HubError(f"{label}: nothing found there (no {CONFIG}, {WEIGHTS} or {README})")
        raise HubError(f"{label} is not a style-zoo model: no {CONFIG}")
    if len(files[CONFIG]) > CONFIG_MAX_BYTES:
        raise HubError(f"{label}: {CONFIG} is {len(files[CONFIG]):,} bytes; a style-zoo config is at most {CONFIG_MAX_BYTES:,}")
    try:
        doc = json.loads(files[CONFIG])
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting too deep to parse
        raise HubError(f"{label} is not a style-zoo model: {CONFIG} is not valid JSON") from None
    meta = doc.get("style_zoo") if isinstance(doc, dict) else None
    record = doc.get("record") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or meta.get("library") != LIBRARY or not isinstance(record, dict):
        raise HubError(f"{label} is not a style-zoo model: {CONFIG} has no style_zoo section")
    if meta.get("format") != FORMAT:
        raise HubError(f"{label}: style-zoo format {show(meta.get('format'))} is not supported (this zoo reads format {FORMAT})")
    try:
        return META(meta, "style_zoo"), pulled_record(record)
    except InvalidRecord as e:
        raise InvalidRecord(f"{label}: {CONFIG} {e}; nothing was added") from None


def verify_folder(files: dict[str, bytes], label: str) -> tuple[dict, dict]:
    """(style_zoo meta, record) of a downloaded folder, or one-line errors: not ours, malformed, missing, tampered."""
    meta, record = read_config(files, label)
    if WEIGHTS not in files:
        raise HubError(f"{label}: {WEIGHTS} is missing")
    data = files[WEIGHTS]
    got = hashlib.sha256(data).hexdigest()
    if got != meta["sha256"]:
        raise IntegrityError(f"{label}: sha256 mismatch for {WEIGHTS} (file {got[:12]}..., {CONFIG} "
                             f"{meta['sha256'][:12]}...): tampered or corrupted; nothing was added")
    check_safetensors_bytes(data, f"{label} {WEIGHTS}")
    if meta.get("bytes", len(data)) != len(data):
        raise IntegrityError(f"{label}: {WEIGHTS} is {len(data)} bytes, {CONFIG} says {meta['bytes']}; nothing was added")
    network_from_bytes(data, record["config"])  # the weights fit the network their config describes
    return meta, record


def _sample_jpeg(data: bytes | None) -> bytes | None:
    """The sample only if it decodes as an image (it is shown in the web page and cards); re-encoded JPEG."""
    if not data:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > 16_000_000:
                return None
            img = img.convert("RGB")
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            return buf.getvalue()
    except Exception:  # noqa: BLE001 - a broken sample is dropped, not fatal
        return None


def pull(source: str, name: str | None = None, zoo: str | None = None) -> dict:
    """Download, verify and add ``hf:OWNER/REPO[@REV]`` (or ``URL[@REV]``) as the next version of ``name``."""
    t = parse_target(source)
    commit = None
    if t.kind == "hf":
        files, commit = _download_hf(t)
    else:
        files = _download_fsspec(t)
    meta, record = verify_folder(files, t.label)
    if name is None:
        try:
            name = validate_name(meta["name"])
        except ZooError:
            raise HubError(f"{t.label} names its model {meta['name'][:80]!r}, not a valid zoo name; pass --name NAME") from None
    validate_name(name)
    origin = {"source": t.label, "revision": t.revision or "main", "ref": f"{meta['name']}@{meta['version']}",
              "sha256": meta["sha256"]}
    if commit:
        origin["commit"] = commit
    record = {**record, "origin": origin}
    sample = _sample_jpeg(files.get(SAMPLE))
    data = files[WEIGHTS]

    entry = Zoo(zoo).add(name, data, record, card_files(name, record, meta["sha256"], len(data), sample))
    return {"ref": entry.ref, "source": t.label, "commit": commit, "sha256": meta["sha256"], "bytes": len(data),
            "zoo": entry.zoo.url, "origin": origin}
