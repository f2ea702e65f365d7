"""2019 test IC of one seed, seed ensembles and the searched config, with Qlib's GRU as the outside reference.

    .venv/bin/python bench/bench_quality.py [--repeats 3] [--seeds 5] [--variants ...] [--max-epochs N]
        [--search-trials 16] [--workdir DIR] [--source DIR] [--threads N]

The protocol of issue 16, through the pipeline's own stages on configs/csi300_2015_2019.yaml: the
shared CSI300 snapshot imported (QlibFolderSource), Alpha360 features and labels stored in DuckDB,
then for each quarter of 2019 one model version per variant on windows rolled forward like the
pipeline's quarterly `sliding` retraining (rolling_windows: train 3 years, valid 1 year, labels
matured before the quarter), scored on the quarter's traded rows as the signals asset scores them,
and its daily IC and Rank IC measured against the stored labels.

Variants: `single` (one seed of the config's kwargs), `ensemble` and `ensemble_rank` (`--seeds` seeds of
them, z-score mean and rank mean; `single` is their first member), `searched`, `searched_ensemble` and
`searched_ensemble_rank` (the same with the kwargs a model search chose on the first quarter's valid
Rank IC; the search runs once and its choice serves every quarter, as in the pipeline) and `qlib_gru`
(Qlib's GRU with its Alpha360 benchmark kwargs on the same processed rows). Each repeat trains every
model anew with other seeds.
`--workdir` keeps the imported data between runs. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from krnn_core.config import PipelineConfig, load_config, market_source, segments
from krnn_core.data import qlib_store
from krnn_core.data.qlib_runtime import init_qlib
from krnn_core.features.alpha360 import ALPHA360_COLUMNS
from krnn_core.features.processors import fillna
from krnn_core.features.store import (
    FeatureMatrix,
    materialize_features,
    materialize_labels,
    read_features,
    read_labels,
)
from krnn_core.model.ensemble import member_seeds
from krnn_core.model.retraining import (
    ModelWindows,
    ensemble_gain,
    ensemble_versions,
    learn_sets,
    load_training_data,
    rolling_windows,
    scratch_folder,
    train_model_version,
)
from krnn_core.model.search import run_search, sample_candidates
from krnn_core.model.versions import load_served, record_model_versions
from krnn_core.reports.evaluation import daily_ic, ic_summary
from krnn_core.signals.scoring import traded_rows
from krnn_core.warehouse import connect
from shared_data import CSI300_2015_2019

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "csi300_2015_2019.yaml"
QUARTERS = ("2019-01-01", "2019-04-01", "2019-07-01", "2019-10-01")
# the variants of one set of kwargs: its first seed alone, and all seeds' z-score and rank ensembles
FAMILIES = {
    "config": {"single": "single", "ensemble": "ensemble", "ensemble_rank": "ensemble_rank"},
    "searched": {"single": "searched", "ensemble": "searched_ensemble", "ensemble_rank": "searched_ensemble_rank"},
}
VARIANTS = (*FAMILIES["config"].values(), *FAMILIES["searched"].values(), "qlib_gru")
CANDIDATES = VARIANTS[1:-1]  # what may beat `single`
TARGET = 1.3  # best Rank IC over single's
GRU_KWARGS = {  # Qlib's examples/benchmarks/GRU/workflow_config_gru_Alpha360.yaml
    "d_feat": 6, "hidden_size": 64, "num_layers": 2, "dropout": 0.0, "n_epochs": 200, "lr": 1e-3,
    "early_stop": 20, "batch_size": 800, "metric": "loss", "loss": "mse", "GPU": 0,
}  # fmt: skip
EXPERIMENT = "bench_quality"  # Qlib's recorder's, for its GRU


@dataclass(frozen=True)
class Quarter:
    """One retraining period of 2019: its model windows and its test days."""

    name: str
    windows: ModelWindows
    test: tuple[pd.Timestamp, pd.Timestamp]


def bench_config(args: argparse.Namespace) -> PipelineConfig:
    """configs/csi300_2015_2019.yaml with its folders in the work directory and the snapshot at --source."""
    config = load_config(CONFIG)
    work = args.workdir.resolve()
    return config.model_copy(
        update={
            "source": config.source.model_copy(update={"path": args.source.resolve()}),
            "qlib_init": config.qlib_init.model_copy(update={"provider_uri": work / "qlib_data"}),
            "duckdb_path": work / "bench.duckdb",
            "model_dir": work / "models",
        }
    )


def prepare_data(config: PipelineConfig) -> None:
    """Stages 1 and 2: import the snapshot, store the features and labels of its days (skipped when stored)."""
    start, end = pd.Timestamp(config.start_time), pd.Timestamp(config.end_time)
    provider = config.qlib_init.provider_uri
    market_source(config).refresh(provider, end)  # adds nothing once the folder reaches `end`
    with connect(config.duckdb_path) as con:
        stored = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'alpha360_labels'").fetchall()
        if stored[0][0] and con.execute("SELECT max(datetime) FROM alpha360_features").fetchall()[0][0] == end.date():
            return
        materialize_features(con, provider, config.market, start, end)
        materialize_labels(con, provider, config.market, start, end)


def quarters(config: PipelineConfig) -> list[Quarter]:
    """The four quarterly periods of 2019 with their sliding windows, as krnn_model's partitions would train."""
    calendar = qlib_store.read_calendar(config.qlib_init.provider_uri, future=True)
    bounds = [pd.Timestamp(q) for q in QUARTERS] + [pd.Timestamp(config.end_time) + pd.Timedelta(days=1)]
    return [
        Quarter(
            f"2019Q{i + 1}",
            rolling_windows(calendar, bounds[i], segments(config), "sliding"),
            (bounds[i], bounds[i + 1] - pd.Timedelta(days=1)),
        )
        for i in range(len(QUARTERS))
    ]


def training_data(con, config: PipelineConfig, windows: ModelWindows) -> tuple[FeatureMatrix, FeatureMatrix]:
    """load_training_data's windows read into memory: Qlib's GRU takes frames, and a 2019 quarter's windows fit."""
    with scratch_folder(config.model_dir) as scratch:
        return tuple(replace(data, x=data.x.read(0, len(data.x))) for data in load_training_data(con, windows, scratch))


def search_config(con, config: PipelineConfig, quarter: Quarter, kwargs: dict, trials: int) -> dict:
    """The kwargs the model search chooses on the first quarter's valid Rank IC, and its trials."""
    candidates = sample_candidates(kwargs, config.search.space.model_dump(), trials, config.search.seed)
    train, valid = training_data(con, config, quarter.windows)
    started = time.monotonic()
    table = run_search(train, valid, quarter.windows, candidates, log=lambda line: print("search", line, flush=True))
    chosen = table[table["chosen"]].iloc[0]
    return {
        "kwargs": json.loads(chosen["kwargs_json"]),
        "chosen_params": json.loads(chosen["params_json"]),
        "chosen_valid_rank_ic": round(float(chosen["valid_rank_ic"]), 4),
        "config_valid_rank_ic": round(float(table["valid_rank_ic"].iloc[0]), 4),
        "trials": len(table),
        "seconds": round(time.monotonic() - started, 1),
        "trial_epochs": table["epochs"].tolist(),
        "trial_seconds": table["seconds"].round(1).tolist(),
    }


def test_rows(con, quarter: Quarter) -> tuple[FeatureMatrix, pd.Series]:
    """The quarter's traded rows (a score each, as the signals asset gives them) and the stored raw labels."""
    data = read_features(con, *quarter.test)
    traded = traded_rows(data.x)
    return FeatureMatrix(data.index[traded], data.x[traded], None), read_labels(con, *quarter.test)


def family_runs(con, config, quarter, train, valid, kwargs: dict, seeds: list[int]) -> dict:
    """One model per seed; with several, their z-score and rank ensembles: kind -> (registry rows, served model)."""
    log = lambda line: None  # noqa: E731
    members = [train_model_version(train, valid, config.model_dir, quarter.windows, {**kwargs, "seed": s}, log)
               for s in seeds]  # fmt: skip
    runs = {"single": ([members[0]], load_served(con, members[0]))}
    if len(members) > 1:
        for name, how in (("ensemble", "zscore"), ("ensemble_rank", "rank")):
            rows = ensemble_versions(members, valid, config.model_dir, how)
            record_model_versions(con, rows)
            runs[name] = (rows, load_served(con, rows[-1]))
    return runs


def scored(served, test: FeatureMatrix, labels: pd.Series) -> pd.DataFrame:
    """Daily IC and Rank IC of a served version's scores on the test rows."""
    return daily_ic(pd.Series(served.score(test.index, test.x), index=test.index), labels)


def gru_daily_ic(train, valid, test: FeatureMatrix, labels: pd.Series, seed: int, max_epochs: int | None, work: Path):
    """Qlib's GRU trained on the same processed rows as ours (a DatasetH stand-in); its test daily IC and epochs."""
    from qlib.contrib.model.pytorch_gru import GRU
    from qlib.workflow import R

    norm, train_set, valid_set = learn_sets(train, valid)
    frames = {"train": _qlib_frame(train_set.x, train_set.y), "valid": _qlib_frame(valid_set.x, valid_set.y)}
    frames["test"] = _qlib_frame(fillna(norm(test.x)), np.full(len(test.x), np.nan, np.float32), test.index)
    kwargs = GRU_KWARGS | {"seed": seed} | ({"n_epochs": max_epochs} if max_epochs else {})
    model, evals = GRU(**kwargs), {}
    with R.start(experiment_name=EXPERIMENT, uri=_recorder_uri(work)):  # fit logs its curves to Qlib's recorder
        model.fit(_FramesDataset(frames), evals_result=evals)
    return daily_ic(model.predict(_FramesDataset(frames)), labels), len(evals["valid"])


def _recorder_uri(work: Path) -> str:
    """An MLflow store in `work` for Qlib's recorder, the experiment's artifacts in work/mlruns.

    SQLite: MLflow 3 refuses a new experiment in a file store. The artifact folder is set when the
    experiment is made, else it is ./mlruns of the current directory (Qlib stores the git diff there).
    """
    import mlflow

    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=(work / "mlruns").resolve().as_uri())
    return uri


def _qlib_frame(x: np.ndarray, y: np.ndarray, index: pd.Index | None = None) -> pd.DataFrame:
    """Rows as Qlib's handler gives them: columns ('feature', name) and ('label', 'LABEL0')."""
    columns = pd.MultiIndex.from_tuples([("feature", c) for c in ALPHA360_COLUMNS] + [("label", "LABEL0")])
    return pd.DataFrame(np.column_stack([x, y]), index=index, columns=columns)


class _FramesDataset:
    """What Qlib's GRU reads of a DatasetH: `segments` and `prepare(segment(s), col_set, data_key)`."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.segments = frames

    def prepare(self, segment, col_set, data_key=None):
        if isinstance(segment, str):
            return self.segments[segment][col_set]
        return [self.segments[name][col_set] for name in segment]


def quarter_runs(con, config, quarter: Quarter, args: argparse.Namespace, searched: dict | None) -> list[dict]:
    """Per repeat: each variant's daily test IC of the quarter, with its ensembles' valid gains and fit seconds."""
    train, valid = training_data(con, config, quarter.windows)
    test, labels = test_rows(con, quarter)
    base = capped(config.task.model.kwargs.model_dump(), args.max_epochs)
    kwargs = {"config": base} | ({"searched": searched["kwargs"]} if searched else {})
    repeats = []
    for repeat in range(args.repeats):
        seeds = member_seeds(base["seed"] + repeat * args.seeds, args.seeds)
        daily, extra = {}, {}
        for family, names in FAMILIES.items():
            wanted = set(names.values()) & set(args.variants)
            if wanted:
                started = time.monotonic()
                count = args.seeds if wanted - {names["single"]} else 1
                for kind, (rows, served) in family_runs(
                    con, config, quarter, train, valid, kwargs[family], seeds[:count]
                ).items():
                    daily[names[kind]] = scored(served, test, labels)
                    if kind != "single":
                        extra[f"{names[kind]}_valid"] = {k: round(v, 4) for k, v in ensemble_gain(rows).items()}
                extra[f"{family}_fit_s"] = round(time.monotonic() - started, 1)
                print(
                    f"{quarter.name} repeat {repeat}: {family} {count} seeds in {extra[f'{family}_fit_s']}s", flush=True
                )
        if "qlib_gru" in args.variants:
            started = time.monotonic()
            daily["qlib_gru"], extra["qlib_gru_epochs"] = gru_daily_ic(
                train, valid, test, labels, base["seed"] + repeat, args.max_epochs, args.workdir
            )
            extra["qlib_gru_fit_s"] = round(time.monotonic() - started, 1)
        print(json.dumps({"quarter": quarter.name, "repeat": repeat, **extra}), flush=True)
        repeats.append({"daily": daily, "extra": extra})
    return repeats


def capped(kwargs: dict, max_epochs: int | None) -> dict:
    """The kwargs with n_epochs at most `max_epochs` (all of them when None)."""
    return kwargs | ({"n_epochs": min(kwargs["n_epochs"], max_epochs)} if max_epochs else {})


def summary(daily: pd.DataFrame) -> dict[str, float]:
    """IC, ICIR, Rank IC, Rank ICIR of daily IC rows, rounded."""
    return {key: round(value, 4) for key, value in ic_summary(daily).items() if key != "days"}


def variant_figures(runs: dict[str, list[dict]], name: str) -> dict:
    """One variant over repeats: 2019 figures' mean and spread (std), and each quarter's Rank IC mean."""
    per_repeat = []
    for repeat in range(len(next(iter(runs.values())))):
        by_quarter = {q: repeats[repeat]["daily"][name] for q, repeats in runs.items()}
        figures = summary(pd.concat(by_quarter.values()))
        figures["quarter_rank_ic"] = {q: round(float(d["rank_ic"].mean()), 4) for q, d in by_quarter.items()}
        per_repeat.append(figures)
    out = {}
    for key in ("ic", "icir", "rank_ic", "rank_icir"):
        values = [r[key] for r in per_repeat]
        spread = round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None  # JSON has no NaN
        out[key], out[f"{key}_std"] = round(float(np.mean(values)), 4), spread
    out["quarter_rank_ic"] = {q: round(float(np.mean([r["quarter_rank_ic"][q] for r in per_repeat])), 4)
                              for q in runs}  # fmt: skip
    out["min_quarter_rank_ic"] = min(out["quarter_rank_ic"].values())
    return out | {"repeats": per_repeat}


def verdict(variants: dict[str, dict]) -> dict:
    """The JSON's headline: single's Rank IC, the best candidate, its worst quarter, Qlib's GRU, the target."""
    out = {"single_rank_ic": variants.get("single", {}).get("rank_ic")}
    candidates = {name: variants[name] for name in CANDIDATES if name in variants}
    if candidates:
        best = max(candidates, key=lambda name: candidates[name]["rank_ic"])
        out |= {"best_name": best, "best_rank_ic": candidates[best]["rank_ic"]}
        out["best_min_quarter_rank_ic"] = candidates[best]["min_quarter_rank_ic"]
        if out["single_rank_ic"]:
            out["best_over_single"] = round(out["best_rank_ic"] / out["single_rank_ic"], 3)
            out["target_met"] = out["best_over_single"] >= TARGET and out["best_min_quarter_rank_ic"] > 0
    return out | {"qlib_gru_rank_ic": variants.get("qlib_gru", {}).get("rank_ic")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="independent repeats (other seeds each)")
    parser.add_argument("--seeds", type=int, default=5, help="members of an ensemble")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--max-epochs", type=int, help="cap every fit's n_epochs (ours, the search's, the GRU's)")
    parser.add_argument("--search-trials", type=int, help="default: the config's search.trials")
    parser.add_argument("--quarters", type=int, default=len(QUARTERS), help="the first N quarters only")
    parser.add_argument("--workdir", type=Path, help="keeps the imported data between runs; default a temp dir")
    parser.add_argument("--source", type=Path, default=CSI300_2015_2019, help="the Qlib snapshot")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    return parser.parse_args()


def main() -> None:
    """Prepare the data, search once if asked, run every quarter and repeat, print the figures."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as temp:
        args.workdir = args.workdir or Path(temp)
        print(json.dumps(run(args)))


def run(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    config = bench_config(args)
    prepare_data(config)
    init_qlib(config.qlib_init.provider_uri)  # Qlib's GRU and its recorder
    periods = quarters(config)[: args.quarters]
    result = {"repeats": args.repeats, "seeds": args.seeds, "max_epochs": args.max_epochs, "threads": args.threads}
    print(f"data ready after {time.monotonic() - started:.0f}s", flush=True)
    with connect(config.duckdb_path) as con:
        searched = None
        if {"searched", "searched_ensemble"} & set(args.variants):
            base = capped(config.task.model.kwargs.model_dump(), args.max_epochs)
            searched = search_config(con, config, periods[0], base, args.search_trials or config.search.trials)
            result["search"] = {k: v for k, v in searched.items() if k != "kwargs"}
        runs = {q.name: quarter_runs(con, config, q, args, searched) for q in periods}
    names = [name for name in VARIANTS if name in runs[periods[0].name][0]["daily"]]
    variants = {name: variant_figures(runs, name) for name in names}
    extras = {q: [r["extra"] for r in repeats] for q, repeats in runs.items()}
    seconds = round(time.monotonic() - started, 1)
    return result | {"variants": variants, "fits": extras, "seconds": seconds} | verdict(variants)


if __name__ == "__main__":
    main()
