"""Lightning's console output, quieted for the CLI and the web page's Gatys worker."""
from __future__ import annotations

import logging
import warnings


def quiet_lightning() -> None:
    """Silence Lightning's banners and known-harmless warnings (our own progress is shown instead)."""
    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: import first, then quiet)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in (r".*module\(s\) in eval mode.*",  # the frozen VGG, on purpose
                    r".*LeafSpec.*", r".*weights_only.*", r".*does not have many workers.*"):
        warnings.filterwarnings("ignore", pattern)
