"""How large a painting is read for its style targets, when its file is smaller than asked for.

Shared by training (``train.schedule``) and Gatys (``lit_modules.gatys``); torch-free. A painting
smaller than the size a run reads paintings at is read at its own size, never enlarged: enlarged, its
brushwork goes soft and that softness is what the style term learns. 13-minute `own` models of
cafe_terrace from a 384 px copy land 0.126 from the painting (style d; its 800 px file: 0.125) read at
288/384 px, 0.185 enlarged to 384/512; Gatys at 512 px with the same copy 0.074 at its own size, 0.121
enlarged, 0.089 from the file (docs/models.md). Even thumbnails: a 160 px copy read at its own size
made a model 0.176 from the painting (content d 0.566), enlarged to 256 px 0.215 (0.585); a 96 px
copy 0.206 (0.598) against 0.364 (0.527). Below the smallest copy measured (96 px of 512) it is
enlarged to that size: a few VGG cells would make its Gram targets, and nothing there is measured.
"""
from __future__ import annotations

import math

SMALLEST_READ = 96 / 512  # of the size asked for: the smallest copy measured


def painting_read_size(long_side: int, wanted: int) -> int:
    """The long side a painting of ``long_side`` px is read at by a run that reads paintings at
    ``wanted`` px: its own size when smaller (never enlarged), but at least ``SMALLEST_READ`` of ``wanted``."""
    return max(min(long_side, wanted), math.ceil(wanted * SMALLEST_READ))
