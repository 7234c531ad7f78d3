"""Progress bars that also work on a resumed run.

Lightning (2.5+) skips ``on_train_epoch_start`` when a run resumes mid-epoch (Lightning issue 20603),
which is where its bars learn their total and description, so ``zoo train --resume`` showed
``Training: 1775/?`` with a rate counted from step 0. Here the bar is set up on the first batch if
the epoch start was skipped, starting at the restored batch, its rate this leg's. (The data module
streams the steps left, and Lightning counts the restored batches into the epoch as well, so a
resumed run ends its epoch early and finishes its steps in a short second one: same steps, same
samples, same schedule.)
"""
from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf


class _ResumeAware:
    _epoch_started = False

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._epoch_started = True

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if not self._epoch_started:  # resumed mid-epoch: the epoch-start hook did not run
            self.on_train_epoch_start(trainer, pl_module)
            # Lightning counts the restored batches into this epoch's length (the loader's)
            self._resumed_at(batch_idx, convert_inf(self.total_train_batches))
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def _resumed_at(self, done: int, total: int) -> None:
        raise NotImplementedError


class StepTQDMBar(_ResumeAware, TQDMProgressBar):
    def set_total(self, total: int) -> None:
        """A time-budgeted run's bar: the steps the budget is now expected to hold (not max_steps)."""
        bar = getattr(self, "_train_progress_bar", None)
        if bar is not None:
            bar.total = total

    def _resumed_at(self, done: int, total: int) -> None:
        bar = self.train_progress_bar
        bar.total, bar.n, bar.initial = total, done, done  # tqdm's rate is (n - initial) / elapsed: this leg's
        bar.refresh()


class StepRichBar(_ResumeAware, RichProgressBar):
    def set_total(self, total: int) -> None:
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, total=total)

    def _resumed_at(self, done: int, total: int) -> None:
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, total=total, completed=done)
