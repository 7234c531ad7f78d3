"""ContentDataModule on real photos: transforms, corrupt files, DDP shards, clear errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import PHOTOS_1K
from train.data import ContentDataModule, ContentImages, DataError, StreamSampler, check_source, folder_files

TRAIN = PHOTOS_1K / "train"


@pytest.fixture()
def small_folder(tmp_path: Path) -> Path:
    files = sorted(TRAIN.glob("*.jpg"))[:10]
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_folder_batches_are_square_rgb_crops(small_folder):
    dm = ContentDataModule(str(small_folder), image_size=48, batch_size=3, total_steps=4, preview_count=2)
    batches = list(dm.train_dataloader())
    assert len(batches) == 4
    x, skipped = batches[0]
    assert x.shape == (3, 3, 48, 48) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.std()) > 0.01
    assert int(skipped) == 0
    preview = dm.preview_batch()
    assert preview.shape == (2, 3, 48, 48)
    # the preview photos are held out of training
    assert len(dm.train_set) == 8


def test_stream_is_deterministic_and_resumable(small_folder):
    a = [x for x, _ in ContentDataModule(str(small_folder), 32, 2, total_steps=6, seed=3).train_dataloader()]
    b = [x for x, _ in ContentDataModule(str(small_folder), 32, 2, total_steps=6, seed=3).train_dataloader()]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    # a stream that starts at step 4 (resume) yields exactly the last two batches
    ds = ContentImages(folder_files(small_folder)[:6], 32, seed=3)
    resumed = StreamSampler(len(ds), seed=3, start_sample=4 * 2, length=2 * 2)
    got = torch.stack([ds[k][0] for k in resumed])
    assert torch.equal(got, torch.cat(a[4:6]))


def test_ddp_ranks_see_distinct_shards_that_make_up_the_global_batch():
    one = list(StreamSampler(n=20, seed=0, start_sample=0, length=8, rank=0, world=1))
    r0 = list(StreamSampler(n=20, seed=0, start_sample=0, length=4, rank=0, world=2))
    r1 = list(StreamSampler(n=20, seed=0, start_sample=0, length=4, rank=1, world=2))
    assert not {p for p, _ in r0} & {p for p, _ in r1}
    # step k of 2 ranks x batch 2 == step k of 1 rank x batch 4 (same samples, same crops: keyed by p)
    for k in range(2):
        assert sorted(r0[2 * k:2 * k + 2] + r1[2 * k:2 * k + 2]) == sorted(one[4 * k:4 * k + 4])
    # the stream crosses epochs with a fresh permutation of every image
    long = [i for _, i in StreamSampler(n=5, seed=0, start_sample=0, length=10)]
    assert sorted(long[:5]) == sorted(long[5:]) == list(range(5))


def test_corrupt_file_is_skipped_and_counted(small_folder):
    files = folder_files(small_folder)
    (small_folder / files[0].name).write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (small_folder / "truncated.jpg").write_bytes(files[1].read_bytes()[:2000])
    dm = ContentDataModule(str(small_folder), image_size=32, batch_size=4, total_steps=6, preview_count=0)
    total_skipped, n = 0, 0
    for x, skipped in dm.train_dataloader():
        assert x.shape == (4, 3, 32, 32)
        total_skipped += int(skipped)
        n += 1
    assert n == 6
    assert total_skipped >= 2  # 24 samples over 11 files: both bad files come up at least once


@pytest.mark.parametrize("make,words", [
    (lambda d: d / "missing", "no such folder"),
    (lambda d: d, "no image files"),
    (lambda d: (d / "notes.txt").write_text("hello") and d, "no image files"),
    (lambda d: (d / "a.jpg").write_bytes(b"not an image") and d, "can be decoded"),
    (lambda d: (d / "file.jpg").write_bytes(b"x") and d / "file.jpg", "not a folder"),
    (lambda d: "hf:", "needs a dataset name"),
    (lambda d: "https://example.com/photos", "https://example.com/photos: a URL"),
])
def test_bad_sources_fail_with_one_clear_line(tmp_path, make, words):
    source = make(tmp_path)
    with pytest.raises(DataError) as e:
        check_source(str(source))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_hf_datasets_go_through_the_same_decoding(small_folder):
    """The hf: code paths (map-style and streaming), on a local in-memory `datasets.Dataset`."""
    import datasets

    from train.data import StreamingImages, _HFItems, _image_column

    paths = [str(p) for p in folder_files(small_folder)]
    (small_folder / "bad.jpg").write_bytes(b"garbage")
    ds = datasets.Dataset.from_dict({"image": paths[:5] + [str(small_folder / "bad.jpg")] + paths[5:],
                                     "caption": ["x"] * (len(paths) + 1)})
    ds = ds.cast_column("image", datasets.Image())
    assert _image_column(ds.features, "local") == "image"
    images = ContentImages(_HFItems(ds, "image"), 40, seed=0)
    x, skipped = images[(0, 5)]  # the corrupt row: skipped, the next one used
    assert x.shape == (3, 40, 40) and skipped == 1
    ref, _ = ContentImages(paths, 40, seed=0)[(0, 5)]
    assert torch.equal(x, ref)  # same pixels as the folder source
    shards = [list(StreamingImages(ds.to_iterable_dataset(num_shards=2), "image", 40, 0, rank, 2, "local")) for rank in (0, 1)]
    assert sum(len(s) for s in shards) == len(paths) and all(len(s) > 0 for s in shards)
    assert sum(k for s in shards for _, k in s) <= 1


def test_photo_size_crops_parts_of_the_photo_at_that_scale(small_folder):
    """--photo-size 200 with 48 px crops: each crop is a 48 px window of the photo resized to a
    200 px short side (not the whole photo squeezed into 48 px); previews stay whole photos."""
    import numpy as np
    from PIL import Image

    from train.data import decode, to_tensor

    dm = ContentDataModule(str(small_folder), image_size=48, batch_size=2, total_steps=2, preview_count=2, photo_size=200)
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 48, 48)
    img = decode(sorted(small_folder.glob("*.jpg"))[0], 200)
    w, h = img.size
    big = img.resize((round(w * 200 / min(w, h)), round(h * 200 / min(w, h))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    centre = to_tensor(img, 48, None, photo_size=200)  # the centre window of the 200 px photo
    bw, bh = big.size
    want = torch.from_numpy(np.asarray(big.crop(((bw - 48) // 2, (bh - 48) // 2, (bw + 48) // 2, (bh + 48) // 2))).copy())
    assert torch.allclose(centre, want.permute(2, 0, 1).float() / 255, atol=1 / 255)
    whole = to_tensor(img, 48, None)
    assert not torch.allclose(whole, centre, atol=0.05)  # squeezing the whole photo is another picture
    assert torch.equal(dm.preview_batch()[0], ContentImages([sorted(small_folder.glob("*.jpg"))[-2]], 48, 0, False)[0][0])


def test_photo_size_below_the_crop_is_refused():
    from lit_modules.errors import ConfigError
    from train.config import build_config

    with pytest.raises(ConfigError, match="photo size"):
        build_config("quick", style="starry", photo_size=64).check()
