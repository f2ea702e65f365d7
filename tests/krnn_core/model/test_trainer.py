"""Trainer: learns a planted signal, stops early on the best epoch, reproduces bit for bit, uses every row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from krnn_core.model.krnn import KRNN, KRNNConfig
from krnn_core.model.metrics import masked_mse, mean_daily_ic
from krnn_core.model.trainer import TrainerConfig, TrainingSet, predict, split_qlib_kwargs, train_krnn

CLOSE0_TO_4 = [55, 56, 57, 58, 59]
SMALL = KRNNConfig(cnn_dim=8, rnn_dim=8, rnn_dups=2, rnn_layers=1)


def _planted(seed: int, days: int, names: int, sign: float = 1.0) -> TrainingSet:
    """Random rows whose label is a noisy function of the last five closes; some labels missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(days * names, 360)).astype(np.float32)
    signal = np.tanh(x[:, CLOSE0_TO_4].sum(axis=1) / 2)
    y = (sign * signal + 0.3 * rng.normal(size=len(x))).astype(np.float32)
    y[rng.random(len(y)) < 0.05] = np.nan
    return TrainingSet(x=x, y=y, day=np.repeat(np.arange(days), names))


def _quiet(_: str) -> None:
    pass


def test_learns_planted_signal() -> None:
    lines: list[str] = []
    config = TrainerConfig(n_epochs=4, lr=0.01, batch_size=200, seed=3)
    result = train_krnn(SMALL, config, _planted(0, 20, 200), _planted(1, 10, 200), lines.append)
    assert result.valid_ic > 0.3
    assert result.history[-1]["valid_ic"] > result.history[0]["valid_ic"]
    assert lines[0] == "training on cpu, seed 3, 4000 train rows, 2000 valid rows"
    assert len(lines) == 5 and lines[1].startswith("epoch 0 ")
    assert result.device == "cpu" and result.seed == 3


def test_early_stop_restores_best_epoch() -> None:
    valid = _planted(1, 5, 200, sign=-1.0)  # the learned relation hurts here: valid loss worsens as training goes on
    config = TrainerConfig(n_epochs=30, lr=0.01, batch_size=200, early_stop=3, seed=5)
    result = train_krnn(SMALL, config, _planted(0, 10, 200), valid, _quiet)
    losses = [h["valid_loss"] for h in result.history]
    assert len(losses) == result.best_epoch + 1 + 3 < 30
    assert result.valid_loss == min(losses) == losses[result.best_epoch]
    pred = torch.from_numpy(predict(result.model, valid.x))
    assert masked_mse(pred, torch.from_numpy(valid.y)).item() == pytest.approx(result.valid_loss, rel=1e-6)
    fresh = KRNN(SMALL)
    fresh.load_state_dict(result.state_dict)
    np.testing.assert_array_equal(predict(fresh, valid.x), pred.numpy())


def test_same_seed_gives_identical_weights() -> None:
    config = TrainerConfig(n_epochs=2, lr=0.01, batch_size=300, seed=11)
    train, valid = _planted(0, 5, 200), _planted(1, 2, 200)
    first = train_krnn(SMALL, config, train, valid, _quiet)
    second = train_krnn(SMALL, config, train, valid, _quiet)
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)
    assert [h["valid_loss"] for h in first.history] == [h["valid_loss"] for h in second.history]


def test_drawn_seed_is_recorded_and_reproduces() -> None:
    train, valid = _planted(0, 2, 100), _planted(1, 2, 100)
    drawn = train_krnn(SMALL, TrainerConfig(n_epochs=1, batch_size=64), train, valid, _quiet)
    again = train_krnn(SMALL, TrainerConfig(n_epochs=1, batch_size=64, seed=drawn.seed), train, valid, _quiet)
    assert all(torch.equal(drawn.state_dict[k], again.state_dict[k]) for k in drawn.state_dict)


def test_partial_batch_is_trained_on() -> None:
    train = _planted(0, 1, 150)  # fewer rows than one batch: Qlib's loop would take no step at all
    result = train_krnn(SMALL, TrainerConfig(n_epochs=1, batch_size=2000, seed=2), train, _planted(1, 1, 50), _quiet)
    torch.manual_seed(2)
    initial = KRNN(SMALL).state_dict()
    assert all(not torch.equal(initial[k], result.state_dict[k]) for k in initial)


def test_mean_daily_ic_matches_numpy_corrcoef() -> None:
    rng = np.random.default_rng(4)
    day = np.repeat([3, 8, 9], 40)
    label = rng.normal(size=120)
    pred = 0.5 * label + rng.normal(size=120)
    label[5] = np.nan
    expected = []
    for d in (3, 8, 9):
        keep = (day == d) & ~np.isnan(label)
        expected.append(np.corrcoef(pred[keep], label[keep])[0, 1])
    assert mean_daily_ic(pred, label, day) == pytest.approx(np.mean(expected), rel=1e-12)


def test_split_qlib_benchmark_kwargs() -> None:
    kwargs = {
        "fea_dim": 6, "cnn_dim": 8, "cnn_kernel_size": 3, "rnn_dim": 8, "rnn_dups": 2, "rnn_layers": 2,
        "n_epochs": 200, "lr": 0.001, "early_stop": 20, "batch_size": 2000, "metric": "loss", "GPU": 0,
    }  # fmt: skip
    model, trainer = split_qlib_kwargs(kwargs)
    assert model == KRNNConfig()
    assert trainer == TrainerConfig()
    with pytest.raises(ValueError, match="d_feat"):
        split_qlib_kwargs({**kwargs, "d_feat": 6})
    with pytest.raises(ValueError, match="optimizer"):
        split_qlib_kwargs({"optimizer": "rmsprop"})


def test_mixed_precision_flag_is_a_no_op_on_the_cpu() -> None:
    train, valid = _planted(0, 2, 100), _planted(1, 2, 100)
    plain = train_krnn(SMALL, TrainerConfig(n_epochs=1, batch_size=64, seed=4), train, valid, _quiet)
    amp = train_krnn(SMALL, TrainerConfig(n_epochs=1, batch_size=64, seed=4, amp=True), train, valid, _quiet)
    assert all(torch.equal(plain.state_dict[k], amp.state_dict[k]) for k in plain.state_dict)
