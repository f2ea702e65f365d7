"""KRNN: day t is the last GRU step, Qlib checkpoints load, and bad configs fail clearly."""

from __future__ import annotations

import pytest
import torch
from qlib.contrib.model.pytorch_krnn import KRNNModel

from krnn_core.model.krnn import KRNN, KRNNConfig

LAG0_COLUMNS = [59, 119, 179, 239, 299, 359]  # CLOSE0, OPEN0, HIGH0, LOW0, VWAP0, VOLUME0


def _qlib_model(config: KRNNConfig) -> KRNNModel:
    """Qlib's KRNNModel with the same hyper-parameters, on CPU."""
    return KRNNModel(
        fea_dim=config.fea_dim,
        cnn_dim=config.cnn_dim,
        cnn_kernel_size=config.cnn_kernel_size,
        rnn_dim=config.rnn_dim,
        rnn_dups=config.rnn_dups,
        rnn_layers=config.rnn_layers,
        dropout=config.dropout,
        device=torch.device("cpu"),
    )


def _memoryless(model: torch.nn.Module) -> None:
    """Make every GRU state depend on its current input only: no recurrent weights, update gate shut."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "weight_hh" in name:
                param.zero_()
            if "bias_ih" in name:
                H = param.shape[0] // 3
                param[H : 2 * H] = -1e4  # gates are (reset, update, new): update gate z = sigmoid(-1e4) = 0


def _inputs_reaching_output(model: torch.nn.Module) -> list[int]:
    """Input columns with a non-zero gradient of the summed output."""
    x = torch.randn(4, 360, requires_grad=True)
    model(x).sum().backward()
    return torch.nonzero(x.grad.abs().sum(dim=0)).flatten().tolist()


def test_last_step_is_day_t() -> None:
    config = KRNNConfig(cnn_kernel_size=1)
    torch.manual_seed(0)
    ours, qlib = KRNN(config), _qlib_model(config)
    _memoryless(ours)
    qlib.load_state_dict(ours.state_dict())
    # With a 1-wide kernel and memoryless GRUs the output sees the last step only.
    assert _inputs_reaching_output(ours) == LAG0_COLUMNS
    # Qlib's view(B, -1, 6) makes its last "step" VOLUME5..VOLUME0 instead.
    assert _inputs_reaching_output(qlib) == list(range(354, 360))


def test_lag0_change_moves_memoryless_output_and_older_lags_do_not() -> None:
    config = KRNNConfig(cnn_kernel_size=1)
    torch.manual_seed(1)
    model = KRNN(config).eval()
    _memoryless(model)
    x = torch.randn(8, 360)
    older = x.clone()
    older[:, [c - 1 for c in LAG0_COLUMNS]] += 1.0  # lag 1 of every field
    today = x.clone()
    today[:, LAG0_COLUMNS] += 1.0
    with torch.no_grad():
        assert torch.equal(model(older), model(x))
        assert (model(today) - model(x)).abs().min() > 1e-4


def test_qlib_state_dict_loads_and_matches_on_qlib_layout() -> None:
    config = KRNNConfig(cnn_dim=5, rnn_dim=7, rnn_dups=3, cnn_kernel_size=5)
    torch.manual_seed(2)
    qlib = _qlib_model(config).eval()
    ours = KRNN(config).eval()
    ours.load_state_dict(qlib.state_dict())
    assert list(ours.state_dict()) == list(qlib.state_dict())
    x = torch.randn(16, 360)
    x_qlib = x.view(16, 6, 60).transpose(1, 2).reshape(16, 360)  # day-major: what Qlib's view expects
    with torch.no_grad():
        torch.testing.assert_close(ours(x), qlib(x_qlib), rtol=0, atol=1e-6)
        assert ours(x).shape == (16,)
        assert ours(x[:1]).shape == (1,)


def test_default_config_is_qlib_benchmark_and_counts_parameters() -> None:
    config = KRNNConfig()
    model = KRNN(config)
    conv = 6 * 8 * 3 + 8
    gru = 3 * (8 * 8 + 8 * 8 + 8 + 8) * 2  # two layers of input 8, hidden 8
    assert sum(p.numel() for p in model.parameters()) == conv + 2 * gru + 8 + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cnn_kernel_size": 4}, "odd"),
        ({"fea_dim": 7}, "360"),
        ({"rnn_dups": 0}, "rnn_dups"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_config_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KRNNConfig(**kwargs)


def test_wrong_input_width_is_refused() -> None:
    with pytest.raises(ValueError, match="360"):
        KRNN(KRNNConfig())(torch.zeros(2, 354))
