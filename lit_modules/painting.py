"""How large a painting is read for its style targets, when its file is smaller than asked for.

Shared by training (``train.schedule``) and Gatys (``lit_modules.gatys``); torch-free. A painting
smaller than the size a run reads paintings at is read at its own size, never enlarged: enlarged, its
brushwork goes soft and that softness is what the style term learns. 13-minute `own` models of
cafe_terrace from a 384 px copy land 0.126 from the painting (style d; its 800 px file: 0.125) read at
288/384 px, 0.185 enlarged to 384/512; Gatys at 512 px with the same copy 0.074 at its own size, 0.121
enlarged, 0.089 from the file (docs/models.md). Below half the size (a thumbnail's Gram targets would
be a few VGG cells) it is enlarged to that half.
"""
from __future__ import annotations

import math

SMALLEST_READ = 0.5


def painting_read_size(long_side: int, wanted: int) -> int:
    """The long side a painting of ``long_side`` px is read at by a run that reads paintings at
    ``wanted`` px: its own size when smaller (never enlarged), but at least half of ``wanted``."""
    return max(min(long_side, wanted), math.ceil(wanted * SMALLEST_READ))
