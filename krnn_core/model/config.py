"""KRNN's hyper-parameters, named as Qlib's KRNN kwargs: the net and its optimisation, without torch.

These dataclasses are the one definition of the config file's `task.model.kwargs`: krnn_core.config
takes its fields from them and checks each value by building them (each check concerns one field).
Loading a config therefore does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT_DIM = 360  # Alpha360: 6 fields x 60 daily lags
# the kwargs a model search varies (krnn_core.model.search), in the order of Qlib's KRNN kwargs
SEARCH_KEYS = ("cnn_dim", "rnn_dim", "rnn_dups", "rnn_layers", "dropout", "lr", "batch_size")


@dataclass(frozen=True)
class KRNNConfig:
    """The net's hyper-parameters; defaults are Qlib's Alpha360 benchmark."""

    fea_dim: int = 6  # fields per day
    cnn_dim: int = 8
    cnn_kernel_size: int = 3
    rnn_dim: int = 8
    rnn_dups: int = 2  # parallel GRUs whose hidden states are averaged
    rnn_layers: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.fea_dim < 1 or INPUT_DIM % self.fea_dim:
            raise ValueError(f"fea_dim={self.fea_dim} must divide the {INPUT_DIM} Alpha360 columns")
        if self.cnn_kernel_size < 1 or self.cnn_kernel_size % 2 == 0:
            # (k - 1) // 2 padding keeps the sequence length only for an odd kernel
            raise ValueError(f"cnn_kernel_size={self.cnn_kernel_size} must be a positive odd number")
        for name in ("cnn_dim", "rnn_dim", "rnn_dups", "rnn_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1)")

    @property
    def lags(self) -> int:
        """Days in one Alpha360 row."""
        return INPUT_DIM // self.fea_dim


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation settings, in the order of Qlib's KRNN kwargs; defaults are Qlib's Alpha360 benchmark."""

    n_epochs: int = 200
    lr: float = 0.001
    metric: str = "loss"  # "loss": valid MSE (Qlib's), "ic": mean daily Pearson IC on valid
    batch_size: int = 2000
    early_stop: int = 20  # epochs without a better valid metric before stopping
    loss: str = "mse"
    optimizer: str = "adam"  # or "gd": plain SGD, as Qlib
    GPU: int = 0  # CUDA device index; negative forces the CPU
    seed: int | None = None  # None draws one, recorded in TrainResult
    amp: bool = False  # not Qlib's: bfloat16 autocast on CUDA; ignored on the CPU

    def __post_init__(self) -> None:
        for name, allowed in (("metric", ("loss", "ic")), ("loss", ("mse",)), ("optimizer", ("adam", "gd"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        for name in ("n_epochs", "batch_size", "early_stop"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr} must be positive")
