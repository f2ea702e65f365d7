from pathlib import Path

import pytest
import yaml

from krnn_signals.config import DEFAULT_CONFIG, ConfigError, load_config


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _default() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def test_default_config_loads_with_paths_resolved_from_its_folder():
    config = load_config(DEFAULT_CONFIG)
    assert config.market == "csi300"
    assert config.task.model.kwargs.rnn_dups == 2
    assert config.duckdb_path == (DEFAULT_CONFIG.parent.parent / "data" / "krnn_signals.duckdb").resolve()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda raw: raw["task"]["model"]["kwargs"].update(rnn_dim="wide"), "task.model.kwargs.rnn_dim"),
        (lambda raw: raw["task"]["model"]["kwargs"].update(hidden_size=64), "task.model.kwargs.hidden_size"),
        (lambda raw: raw["source"].update(kind="bloomberg"), "source.kind"),
        (lambda raw: raw["rolling"].update(step="weekly"), "rolling.step"),
        (lambda raw: raw.pop("duckdb_path"), "duckdb_path"),
        (lambda raw: raw["task"]["dataset"]["segments"].update(valid=["2021-01-04", "2021-02-01"]), "segments"),
    ],
)
def test_a_bad_config_is_refused_naming_file_and_key(tmp_path, edit, named):
    raw = _default()
    edit(raw)
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, raw))
    assert named in str(error.value)
    assert str(tmp_path / "config.yaml") in str(error.value)


def test_unreadable_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("market: [csi300\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cn_tiny_2019"


def test_a_qlib_folder_source_resolves_its_path(tmp_path):
    from krnn_core.sources.qlib_folder import QlibFolderSource
    from krnn_signals.config import market_source

    raw = _default()
    raw["source"] = {"kind": "qlib_folder", "path": "tiny", "suspended_as_missing": False}
    (tmp_path / "tiny").symlink_to(FIXTURE)
    config = load_config(_write(tmp_path, raw))
    assert market_source(config) == QlibFolderSource(FIXTURE, suspended_as_missing=False)  # resolved from the config


def test_a_csv_source_needs_a_path_and_names_it(tmp_path):
    raw = _default()
    raw["source"] = {"kind": "csv"}
    with pytest.raises(ConfigError, match="source.csv.path"):
        load_config(_write(tmp_path, raw))
