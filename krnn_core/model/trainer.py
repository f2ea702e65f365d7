"""Training loop for KRNN with Qlib's semantics: Adam on masked MSE, gradient values clipped at 3,
early stopping on the validation metric and the best epoch's weights restored.

Unlike Qlib, the training set lives on the device as one float32 tensor (on the CPU, a set in a
RowFile stays on disk and each batch reads its rows), every row is used each epoch (the last partial
batch too), and a seed makes a CPU run reproducible bit for bit.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch

from krnn_core.features.row_file import RowFile
from krnn_core.model.config import KRNNConfig, TrainerConfig
from krnn_core.model.krnn import KRNN
from krnn_core.model.metrics import masked_mse, mean_daily_ic

GRAD_CLIP = 3.0  # Qlib's clip_grad_value_ bound
EVAL_BATCH = 8192


@dataclass
class TrainingSet:
    """Normalized Alpha360 rows with their CSRankNorm label and day id."""

    x: np.ndarray | RowFile  # (n, 360) float32, normalized and NaN-free
    y: np.ndarray  # (n,) float32, may hold NaN
    day: np.ndarray  # (n,) int, groups rows into days for the daily IC


@dataclass
class TrainResult:
    """The model restored to its best epoch, those weights, and the record of the run."""

    model: KRNN  # in eval mode, on the training device
    state_dict: dict[str, torch.Tensor]  # on the CPU
    best_epoch: int
    valid_loss: float
    valid_ic: float
    history: list[dict[str, float]]  # per epoch: epoch, train_loss, valid_loss, valid_ic, seconds
    device: str
    seed: int


def split_qlib_kwargs(kwargs: dict) -> tuple[KRNNConfig, TrainerConfig]:
    """Qlib's `task.model.kwargs` for KRNN -> (model config, trainer config)."""
    model_keys = {f.name for f in fields(KRNNConfig)}
    trainer_keys = {f.name for f in fields(TrainerConfig)}
    unknown = sorted(set(kwargs) - model_keys - trainer_keys)
    if unknown:
        raise ValueError(f"unknown KRNN kwargs: {', '.join(unknown)}")
    model = KRNNConfig(**{k: v for k, v in kwargs.items() if k in model_keys})
    trainer = TrainerConfig(**{k: v for k, v in kwargs.items() if k in trainer_keys})
    return model, trainer


def _autocast(device: torch.device, amp: bool) -> torch.autocast:
    """bfloat16 autocast on CUDA when asked (no loss scaling needed), a disabled context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


@torch.no_grad()
def _predict_rows(model: KRNN, x: torch.Tensor | RowFile, batch_size: int, amp: bool = False) -> torch.Tensor:
    """Scores (n,) float32 of normalized rows (n, 360) resident on the model's device or in a RowFile, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    with _autocast(device, amp):
        batches = (_slice(x, i, i + batch_size).to(device) for i in range(0, len(x), batch_size))
        return torch.cat([model(batch).float() for batch in batches])


def predict(model: KRNN, x: np.ndarray | RowFile, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Scores (n,) float32 of normalized Alpha360 rows (n, 360), in memory or in a RowFile."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    device = next(model.parameters()).device
    rows = torch.from_numpy(x).float().to(device) if isinstance(x, np.ndarray) else x
    return _predict_rows(model, rows, batch_size).cpu().numpy()


def _train_epoch(
    model: KRNN,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor | RowFile,
    y: torch.Tensor,
    labelled: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    amp: bool = False,
) -> float:
    """One pass over every labelled row in a fresh random order; returns the mean batch loss, weighted by rows."""
    model.train()
    order = labelled[torch.randperm(len(labelled), generator=generator).to(labelled.device)]
    total = torch.zeros((), device=y.device)
    for i in range(0, len(order), batch_size):  # the last, partial batch is kept
        idx = order[i : i + batch_size]
        with _autocast(y.device, amp):
            pred = model(_rows(x, idx)).float()  # (batch,): the loss in float32 under autocast too
        loss = masked_mse(pred, y[idx])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        total += loss.detach() * len(idx)  # summed on the device: no host sync per batch
    return total.item() / len(order)


def _slice(x: torch.Tensor | RowFile, start: int, stop: int) -> torch.Tensor:
    """Rows start .. stop - 1 of a resident tensor, or read from the file."""
    return x[start:stop] if isinstance(x, torch.Tensor) else torch.from_numpy(x.read(start, stop))


def _rows(x: torch.Tensor | RowFile, idx: torch.Tensor) -> torch.Tensor:
    """The rows at idx, gathered on the device, or read from the file into a tensor of PyTorch's own allocation."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    out = torch.empty((len(idx), x.columns), dtype=torch.float32)
    x.take(idx.numpy(), out.numpy())
    return out


def _evaluate(
    model: KRNN, x: torch.Tensor | RowFile, y: torch.Tensor, day: np.ndarray, amp: bool = False
) -> tuple[float, float]:
    """(MSE over the labelled rows, mean daily IC) of the model on one set."""
    pred = _predict_rows(model, x, EVAL_BATCH, amp)  # (n,)
    return masked_mse(pred, y).item(), mean_daily_ic(pred.cpu().numpy(), y.cpu().numpy(), day)


def _on_device(x: np.ndarray | RowFile, device: torch.device) -> torch.Tensor | RowFile:
    """Rows (n, 360) as a float32 tensor resident on the device; a RowFile stays on disk when training on the CPU.

    A float32 array on the CPU is used in place (no copy); a RowFile goes to a GPU in blocks."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x).float().to(device)
    if device.type == "cpu":
        return x
    resident = torch.empty(x.shape, dtype=torch.float32, device=device)
    for start, stop in x.blocks():
        resident[start:stop] = torch.from_numpy(x.read(start, stop)).to(device)
    return resident


def _setup(model_config: KRNNConfig, cfg: TrainerConfig) -> tuple[KRNN, torch.optim.Optimizer, torch.Generator, int]:
    """Seeded model, optimizer and batch-order generator; draws the seed when the config has none."""
    seed = cfg.seed if cfg.seed is not None else secrets.randbits(31)
    torch.manual_seed(seed)  # weight init and dropout
    model = KRNN(model_config).to(training_device(cfg.GPU))
    opt_class = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    return model, opt_class(model.parameters(), lr=cfg.lr), torch.Generator().manual_seed(seed), seed


def training_device(gpu: int) -> torch.device:
    """cuda:<gpu> when CUDA is available and gpu >= 0, as Qlib's `GPU` kwarg; the CPU otherwise."""
    return torch.device(f"cuda:{gpu}" if torch.cuda.is_available() and gpu >= 0 else "cpu")


def train_krnn(
    model_config: KRNNConfig,
    trainer_config: TrainerConfig,
    train: TrainingSet,
    valid: TrainingSet,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Fit KRNN on `train`, stop early on `valid`, and return the model with its best epoch's weights."""
    cfg = trainer_config
    model, optimizer, generator, seed = _setup(model_config, cfg)
    device = next(model.parameters()).device
    log(f"training on {device}, seed {seed}, {len(train.x)} train rows, {len(valid.x)} valid rows")
    # A row without a label adds nothing to the masked loss; leaving it out keeps every batch's loss defined.
    labelled = torch.from_numpy(np.flatnonzero(~np.isnan(train.y))).to(device)
    x_train, y_train = _on_device(train.x, device), torch.from_numpy(train.y).float().to(device)
    x_valid, y_valid = _on_device(valid.x, device), torch.from_numpy(valid.y).float().to(device)

    history: list[dict[str, float]] = []
    best_score, best_epoch, best_state, waited = -np.inf, -1, None, 0
    for epoch in range(cfg.n_epochs):
        start = time.perf_counter()
        train_loss = _train_epoch(model, optimizer, x_train, y_train, labelled, cfg.batch_size, generator, cfg.amp)
        valid_loss, valid_ic = _evaluate(model, x_valid, y_valid, valid.day, cfg.amp)
        row = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss, "valid_ic": valid_ic}
        history.append({**row, "seconds": time.perf_counter() - start})
        score = -valid_loss if cfg.metric == "loss" else valid_ic
        improved = score > best_score  # strict, as Qlib: a tie keeps the earlier epoch
        log(" ".join(f"{k} {v:.6g}" for k, v in history[-1].items()) + ("  *" if improved else ""))
        if improved:
            best_score, best_epoch, waited = score, epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        elif (waited := waited + 1) >= cfg.early_stop:
            log(f"early stop after {waited} epochs without a better valid {cfg.metric}; best epoch {best_epoch}")
            break
    if best_state is None:
        raise RuntimeError(f"valid {cfg.metric} was never finite; no epoch to keep")
    model.load_state_dict(best_state)
    best = history[best_epoch]
    return TrainResult(model, best_state, best_epoch, best["valid_loss"], best["valid_ic"], history, str(device), seed)
