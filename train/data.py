"""Content photos for fast-style training: a local folder or a Hugging Face dataset.

Both sources go through the same transforms: resize the short side to ``photo_size`` (default:
``image_size``, the whole photo squeezed into the crop), crop an ``image_size`` square (random for
training, centre for previews), RGB float in [0, 1], shape (3, S, S). A ``photo_size`` above the
crop trains on parts of photos at the scale people apply at (a 512 px photo is ~384 px on its
short side); measured on the built-in network it did worse at 512 px (instance norm then learns
the statistics of parts of photos, not of the whole photos it meets at apply time; see docs/models.md).

Sampling is a deterministic stream: sample number ``p`` of the run (over all ranks) is image
``perm_e[p % N]`` of epoch ``e = p // N``'s seeded permutation, cropped at a position seeded by
``(seed, p)``. A rank takes every ``world``-th sample, so 2 processes x batch 2 see exactly the
images and crops of 1 process x batch 4, and a resumed run continues the stream at its step.
Corrupt or unreadable images are skipped (the next image in the stream is used) and counted.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from lit_modules.errors import StyleZooError, as_url, one_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_CONSECUTIVE_FAILURES = 50


class DataError(StyleZooError):
    """The training data cannot be found or read."""


# ------------------------------------------------------------------------------------------------
# decoding and transforms
# ------------------------------------------------------------------------------------------------
def decode(source, min_side: int) -> Image.Image:
    """A path, bytes or PIL image -> RGB PIL image (JPEGs decoded at reduced size when large)."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(source, dict):  # an undecoded datasets.Image value
                source = source.get("bytes") or source.get("path")
            if isinstance(source, Image.Image):
                img = source
            else:
                img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
            if img.format == "JPEG":
                img.draft("RGB", (min_side, min_side))  # DCT-domain downscale: much faster decode
            img.load()
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def short_side(size: int, photo_size: int | None) -> int:
    """The short side a photo is resized to before its ``size`` crop."""
    return max(size, photo_size or size)


def to_tensor(img: Image.Image, size: int, rng: np.random.Generator | None, photo_size: int | None = None) -> torch.Tensor:
    """Resize short side to ``photo_size`` (default ``size``), square ``size`` crop (random if ``rng``
    else centre) -> (3, size, size) in [0, 1]."""
    w, h = img.size
    short = short_side(size, photo_size)
    scale = short / min(w, h)
    if abs(scale - 1) > 1e-6:
        img = img.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    w, h = img.size
    if rng is None:
        x0, y0 = (w - size) // 2, (h - size) // 2
    else:
        x0, y0 = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
    arr = np.asarray(img.crop((x0, y0, x0 + size, y0 + size)), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


# ------------------------------------------------------------------------------------------------
# sources: a list of "items" (paths or HF rows) behind one interface
# ------------------------------------------------------------------------------------------------
def folder_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith("."))


def check_source(source: str) -> None:
    """Fail fast, with one line, on a data source that cannot work."""
    if source.startswith("hf:"):
        if not source[3:].strip():
            raise DataError("--data hf:NAME needs a dataset name, e.g. hf:justram/COCO2014-Images")
        from train.hf_offline import check_hf_dataset

        check_hf_dataset(source[3:].strip())  # not cached and no network: one line now, not retries
        return
    root = Path(source).expanduser()
    if not root.exists() and as_url(source):
        raise DataError(f"--data {as_url(source)}: a URL; give a local folder of images, or hf:DATASET for a Hugging Face dataset")
    if not root.exists():
        raise DataError(f"--data {source}: no such folder (give a folder of images or hf:DATASET)")
    if not root.is_dir():
        raise DataError(f"--data {source}: is a file, not a folder of images (or use hf:DATASET)")
    files = folder_files(root)
    if not files:
        raise DataError(f"--data {source}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    for f in files[: min(len(files), MAX_CONSECUTIVE_FAILURES)]:
        try:
            decode(f, 64)
            return
        except Exception:
            continue
    raise DataError(f"--data {source}: none of the first {min(len(files), MAX_CONSECUTIVE_FAILURES)} image files can be decoded")


class _HFItems:
    """Random access to the images of a map-style HF dataset, decoded by us (corrupt ones skippable)."""

    def __init__(self, ds, column: str) -> None:
        from datasets import Image as HFImage

        self.ds = ds.cast_column(column, HFImage(decode=False)).select_columns([column])
        self.column = column

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        return self.ds[int(i)][self.column]


def _image_column(features, name: str) -> str:
    from datasets import Image as HFImage

    for col, feat in features.items():
        if isinstance(feat, HFImage):
            return col
    raise DataError(f"hf:{name}: the dataset has no image column (columns: {', '.join(features)})")


def load_hf(name: str, split: str, streaming: bool):
    try:
        import datasets

        return datasets.load_dataset(name, split=split, streaming=streaming)
    except Exception as e:
        msg = one_line(e)
        raise DataError(f"hf:{name} (split {split}): cannot load ({msg[:200]})") from None


# ------------------------------------------------------------------------------------------------
# map-style dataset + deterministic stream sampler
# ------------------------------------------------------------------------------------------------
class StreamSampler(Sampler):
    """Yields ``(p, index)``: sample number p of the run's stream and the image it maps to.

    The stream over all ranks is ``perm_e[p % n]`` with ``e = p // n``; this rank takes
    ``p = start + rank, start + rank + world, ...`` up to ``end`` (exclusive). ``start`` may be a
    callable, read at every ``iter()``: the trainer's step, so that however the fit loop
    restarts its epochs after a resume, the stream continues where the optimizer is.
    """

    def __init__(self, n: int, seed: int, start_sample, length: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.start_fn = start_sample if callable(start_sample) else (lambda: start_sample)
        self.end = self.start_fn() + length * world  # length: this rank's samples from the first start
        self.length = length
        self._perms: dict[int, np.ndarray] = {}

    def perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return self._perms[epoch]

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        for p in range(self.start_fn() + self.rank, self.end, self.world):
            yield p, int(self.perm(p // self.n)[p % self.n])


class ContentImages(Dataset):
    """Map-style dataset over ``items`` (paths, or an HF accessor); ``__getitem__((p, i))`` -> (image, skipped)."""

    def __init__(self, items, image_size: int, seed: int, train: bool = True, label: str = "",
                 photo_size: int | None = None) -> None:
        self.items, self.size, self.seed, self.train, self.label = items, image_size, seed, train, label
        self.photo_size = photo_size if train else None  # previews: the whole photo, centre crop
        self.short = short_side(image_size, self.photo_size)
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int, p: int = 0) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, 1, p]) if self.train else None
        return to_tensor(decode(self.items[i], self.short), self.size, rng, self.short)

    def __getitem__(self, key):
        p, i = key if isinstance(key, tuple) else (0, key)
        skipped = 0
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            if i not in self.bad:
                try:
                    return self.load(i, p), skipped
                except Exception:
                    self.bad.add(i)
            skipped += 1
            i = (i + 1) % len(self.items)
        raise DataError(f"{self.label}: {MAX_CONSECUTIVE_FAILURES} images in a row could not be decoded")


class StreamingImages(IterableDataset):
    """A streaming HF dataset, sharded by rank (split_dataset_by_node) and by worker (datasets does it)."""

    def __init__(self, ds, column: str, image_size: int, seed: int, rank: int, world: int, label: str,
                 photo_size: int | None = None) -> None:
        from datasets import Image as HFImage
        from datasets.distributed import split_dataset_by_node

        ds = ds.cast_column(column, HFImage(decode=False))  # we decode: a corrupt image is skipped, not fatal
        self.ds = split_dataset_by_node(ds.shuffle(seed=seed, buffer_size=2000), rank=rank, world_size=world)
        self.column, self.size, self.seed, self.label = column, image_size, seed, label
        self.short = short_side(image_size, photo_size)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 2, info.id if info else 0, torch.initial_seed() % 2**31])
        skipped = fails = 0
        for row in self.ds:
            try:
                img = to_tensor(decode(row[self.column], self.short), self.size, rng, self.short)
            except Exception:
                skipped += 1
                fails += 1
                if fails >= MAX_CONSECUTIVE_FAILURES:
                    raise DataError(f"{self.label}: {fails} images in a row could not be decoded") from None
                continue
            fails = 0
            yield img, skipped
            skipped = 0


def collate(batch):
    images = torch.stack([b[0] for b in batch])
    return images, torch.tensor(sum(b[1] for b in batch))


class ContentDataModule(L.LightningDataModule):
    """Content photos from ``source`` = a folder path or ``hf:<dataset>``.

    The last ``preview_count`` images (folder: by sorted name; HF: from the validation split if
    there is one) are held out of training and used as fixed preview photos (centre crops).
    ``total_steps`` sizes the sample stream; under DDP each rank gets a distinct shard.
    """

    def __init__(
        self,
        source: str,
        image_size: int = 256,
        batch_size: int = 4,
        total_steps: int = 1000,
        seed: int = 0,
        num_workers: int = 0,
        preview_count: int = 4,
        streaming: bool = False,
        photo_size: int | None = None,
    ) -> None:
        super().__init__()
        self.photo_size = photo_size
        self.source, self.image_size, self.batch_size = source, image_size, batch_size
        self.total_steps, self.seed, self.num_workers = total_steps, seed, num_workers
        self.preview_count, self.streaming = preview_count, streaming
        self.train_set = self.preview_set = None
        self.skipped = 0

    # -- sources --------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        check_source(self.source)
        label = f"--data {self.source}"
        if not self.source.startswith("hf:"):
            files = folder_files(Path(self.source).expanduser())
            k = self.preview_count if len(files) > self.preview_count + 1 else 0
            self.train_set = ContentImages(files[: len(files) - k] if k else files, self.image_size, self.seed, True, label,
                                           self.photo_size)
            self.preview_set = ContentImages(files[len(files) - k:] if k else files[:0], self.image_size, self.seed, False, label)
            return
        name = self.source[3:]
        ds = load_hf(name, "train", self.streaming)
        column = _image_column(ds.features, name)
        if self.streaming:
            rank, world = self._rank_world()
            self.train_set = StreamingImages(ds, column, self.image_size, self.seed, rank, world, label, self.photo_size)
            preview = list(ds.take(self.preview_count))
            self.preview_set = [(to_tensor(decode(r[column], self.image_size), self.image_size, None), 0) for r in preview]
        else:
            self.train_set = ContentImages(_HFItems(ds, column), self.image_size, self.seed, True, label, self.photo_size)
            try:
                val = load_hf(name, "validation", False)
                items = _HFItems(val.select(range(min(self.preview_count, len(val)))), _image_column(val.features, name))
            except DataError:
                items = _HFItems(ds.select(range(min(self.preview_count, len(ds)))), column)
            self.preview_set = ContentImages(items, self.image_size, self.seed, False, label)

    def _rank_world(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    # -- loaders --------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        self.setup()
        rank, world = self._rank_world()
        start_step = self.trainer.global_step if self.trainer is not None else 0
        remaining = max(1, self.total_steps - start_step)
        kw = dict(batch_size=self.batch_size, collate_fn=collate, num_workers=self.num_workers,
                  pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0, drop_last=True)
        if isinstance(self.train_set, IterableDataset):
            return DataLoader(self.train_set, **kw)
        sampler = StreamSampler(len(self.train_set), self.seed, self._start_sample, remaining * self.batch_size, rank, world)
        return DataLoader(self.train_set, sampler=sampler, **kw)

    def _start_sample(self) -> int:
        """Where the stream stands: the trainer's optimizer step x the global batch."""
        step = self.trainer.global_step if self.trainer is not None else 0
        return step * self.batch_size * self._rank_world()[1]

    def preview_batch(self) -> torch.Tensor | None:
        """The fixed preview photos as one (K, 3, S, S) batch (None if there are none)."""
        self.setup()
        imgs = []
        for i in range(len(self.preview_set)):
            try:
                imgs.append(self.preview_set[i][0])
            except DataError:
                break
        return torch.stack(imgs) if imgs else None
