"""Errors shared across the package: one type per kind of mistake a user can make."""

from __future__ import annotations


class ArgError(ValueError):
  """An argument out of range. `field` names the argument; the message says what is allowed.

  Raised by the dataset records (the launchers name the flag `--config.data.<dataset>.<field>`),
  by `train.OptimConfig` (`--config.optim.<field>`) and by `pipeline.TempoWarp`
  (`--config.augment.<field>`)."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field
