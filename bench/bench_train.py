"""Seconds per epoch of Qlib's KRNN and of ours on the same processed Alpha360 arrays, in one run.

    .venv/bin/python bench/bench_train.py [--provider DIR] [--epochs 3] [--full [--seeds 0 1 2] [--amp]] [--threads N]
        [--ours-kwargs JSON]

Both read Qlib's own DatasetH over the Alpha360 handler with the benchmark's processors
(RobustZScoreNorm + Fillna on features, DropnaLabel + CSRankNorm on the label), so an epoch is
compared with an epoch: one training pass plus the valid evaluation early stopping needs (Qlib's
`fit` also re-evaluates the whole train set every epoch; `qlib_loop_epoch_s` counts that too).
`--full` trains both to early stop and scores the test window against the raw label; ours once per
`--seeds` seed (early stopping on `--metric`), and with `--amp` once more per seed in bfloat16 (CUDA only).
`--ours-kwargs` times our epoch with other kwargs (a search candidate, say) against Qlib's benchmark epoch.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from krnn_core.model.trainer import TrainingSet, predict, split_qlib_kwargs, train_krnn, training_device
from krnn_core.reports.evaluation import daily_ic, ic_summary
from shared_data import CSI300_2015_2019

BENCHMARK_KWARGS = {  # Qlib's examples/benchmarks/KRNN/workflow_config_krnn_Alpha360.yaml
    "fea_dim": 6, "cnn_dim": 8, "cnn_kernel_size": 3, "rnn_dim": 8, "rnn_dups": 2, "rnn_layers": 2,
    "n_epochs": 200, "lr": 0.001, "early_stop": 20, "batch_size": 2000, "metric": "loss", "GPU": 0,
}  # fmt: skip


def lower_case_view(provider: Path, folder: Path) -> Path:
    """A Qlib folder whose features/<code> are lower-case links to the provider's folders, which Qlib needs."""
    for sub in ("calendars", "instruments"):
        shutil.copytree(provider / sub, folder / sub)
    (folder / "features").mkdir()
    for code in (provider / "features").iterdir():
        (folder / "features" / code.name.lower()).symlink_to(code.resolve(), target_is_directory=True)
    return folder


def qlib_dataset(provider: Path, args: argparse.Namespace):
    """Qlib's DatasetH over Alpha360 with the benchmark processors, fitted on the train window."""
    import qlib
    from qlib.utils import init_instance_by_config

    qlib.init(provider_uri=str(provider), region="cn", kernels=args.threads, expression_cache=None, dataset_cache=None)
    handler = {
        "class": "Alpha360",
        "module_path": "qlib.contrib.data.handler",
        "kwargs": {
            "start_time": args.train[0], "end_time": args.test[1], "instruments": args.market,
            "fit_start_time": args.train[0], "fit_end_time": args.train[1],
            "infer_processors": [
                {"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature", "clip_outlier": True}},
                {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
            ],
            "learn_processors": [
                {"class": "DropnaLabel"}, {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}},
            ],
        },
    }  # fmt: skip
    segments = {"train": tuple(args.train), "valid": tuple(args.valid), "test": tuple(args.test)}
    return init_instance_by_config({"class": "DatasetH", "module_path": "qlib.data.dataset",
                                    "kwargs": {"handler": handler, "segments": segments}})  # fmt: skip


def learn_set(frame: pd.DataFrame) -> TrainingSet:
    """Qlib's learn-processed frame (feature, label columns) as the arrays our trainer keeps on the device."""
    day = pd.factorize(frame.index.get_level_values("datetime"))[0]
    y = frame["label"].to_numpy(np.float32)[:, 0]
    return TrainingSet(x=np.ascontiguousarray(frame["feature"].to_numpy(np.float32)), y=y, day=day)


def time_qlib_epoch(model, train: pd.DataFrame, valid: pd.DataFrame) -> dict[str, float]:
    """Seconds of Qlib's training pass, its valid evaluation and its train re-evaluation, one epoch."""
    seconds = {}
    for part, (frame, run) in {
        "train": (train, model.train_epoch), "valid": (valid, model.test_epoch), "train_eval": (train, model.test_epoch)
    }.items():  # fmt: skip
        started = time.perf_counter()
        run(frame["feature"], frame["label"])
        seconds[part] = time.perf_counter() - started
    return seconds


def time_ours_epoch(kwargs: dict, train: TrainingSet, valid: TrainingSet, seed: int) -> float:
    """Seconds of our trainer's epoch (training pass, valid loss and IC), as it records them."""
    model_config, trainer_config = split_qlib_kwargs({**kwargs, "seed": seed, "n_epochs": 1})
    return train_krnn(model_config, trainer_config, train, valid, log=lambda line: None).history[0]["seconds"]


def time_epochs(
    kwargs: dict, frames: tuple[pd.DataFrame, pd.DataFrame], seed: int, epochs: int, ours_kwargs: dict
) -> dict[str, float]:
    """Median epoch seconds of both, the epochs interleaved so that both meet the same load on a shared machine."""
    train, valid = learn_set(frames[0]), learn_set(frames[1])
    qlib, parts, ours = qlib_model({**kwargs, "n_epochs": epochs}, seed), [], []
    for epoch in range(epochs):
        parts.append(time_qlib_epoch(qlib, *frames))
        ours.append(time_ours_epoch({**kwargs, **ours_kwargs}, train, valid, seed))
        print(f"epoch {epoch}: qlib {parts[-1]}, ours {ours[-1]:.2f}s", flush=True)
    median = {part: float(np.median([p[part] for p in parts])) for part in parts[0]}
    return {"qlib_" + part: seconds for part, seconds in median.items()} | {"ours": float(np.median(ours))}


def qlib_model(kwargs: dict, seed: int):
    """Qlib's KRNN with the benchmark kwargs."""
    from qlib.contrib.model.pytorch_krnn import KRNN as QlibKRNN

    return QlibKRNN(**kwargs, seed=seed)


def test_metrics(prefix: str, scores: np.ndarray, index: pd.MultiIndex, label: pd.Series) -> dict[str, float]:
    """IC, Rank IC and their IRs of test scores against the raw label."""
    summary = ic_summary(daily_ic(pd.Series(scores, index=index), label.reindex(index)))
    keys = ("ic", "rank_ic", "icir", "rank_icir")
    return {f"{prefix}_{key}": round(summary[key], 4) for key in keys}


def fit_ours(kwargs: dict, train: TrainingSet, valid: TrainingSet, x_test: pd.DataFrame, label: pd.Series) -> dict:
    """Ours trained to early stop: fit seconds, epochs, best valid IC and the test metrics."""
    model_config, trainer_config = split_qlib_kwargs(kwargs)
    ours = train_krnn(model_config, trainer_config, train, valid, log=lambda line: print("ours", line, flush=True))
    out = {"fit_s": round(sum(h["seconds"] for h in ours.history), 1), "best_epoch": ours.best_epoch,
           "epochs": len(ours.history), "valid_ic": round(ours.valid_ic, 4)}  # fmt: skip
    scores = predict(ours.model, x_test.to_numpy(np.float32))
    return out | test_metrics("test", scores, x_test.index, label)


def full_run(kwargs: dict, dataset, train: TrainingSet, valid: TrainingSet, args: argparse.Namespace) -> dict:
    """Qlib's KRNN and ours (per seed, fp32 and with --amp bf16) trained to early stop, scored on the test window."""
    from qlib.data.dataset.handler import DataHandlerLP

    x_test = dataset.prepare("test", col_set="feature", data_key=DataHandlerLP.DK_I)
    label = dataset.prepare("test", col_set="label", data_key=DataHandlerLP.DK_R).iloc[:, 0]
    out = {}
    variants = {"ours": False, "ours_amp": True} if args.amp else {"ours": False}
    for name, amp in variants.items():
        runs = [fit_ours({**kwargs, "metric": args.metric, "seed": seed, "amp": amp}, train, valid, x_test, label)
                for seed in args.seeds]  # fmt: skip
        out[f"{name}_runs"] = runs
        for key in ("fit_s", "valid_ic", "test_ic", "test_rank_ic"):
            out[f"{name}_{key}"] = round(float(np.mean([run[key] for run in runs])), 4)
        print(json.dumps({name: out[f"{name}_runs"]}), flush=True)
    qlib = qlib_model(kwargs, args.seed)
    started = time.perf_counter()
    qlib.fit(dataset)
    out["qlib_fit_s"] = round(time.perf_counter() - started, 1)
    return out | test_metrics("qlib", qlib.predict(dataset).to_numpy(), x_test.index, label)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", type=Path, default=CSI300_2015_2019)
    parser.add_argument("--market", default="csi300")
    parser.add_argument("--train", nargs=2, default=["2015-01-05", "2017-12-31"], metavar=("S", "E"))
    parser.add_argument("--valid", nargs=2, default=["2018-01-01", "2018-12-31"], metavar=("S", "E"))
    parser.add_argument("--test", nargs=2, default=["2019-01-01", "2019-12-31"], metavar=("S", "E"))
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed for each model")
    parser.add_argument("--full", action="store_true", help="also train both to early stop and compare test IC")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of our full fits")
    parser.add_argument("--metric", default="loss", choices=("loss", "ic"), help="early stopping metric of ours")
    parser.add_argument("--amp", action="store_true", help="with --full, also fit ours in bfloat16 (CUDA)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=BENCHMARK_KWARGS["batch_size"])
    parser.add_argument("--ours-kwargs", type=json.loads, default={}, help="JSON: our KRNN kwargs in the timed epochs")
    return parser.parse_args()


def main() -> None:
    """Time both models' epochs on the same arrays, then optionally train both to the end."""
    args = parse_args()
    kwargs = {**BENCHMARK_KWARGS, "batch_size": args.batch_size}
    torch.set_num_threads(args.threads)
    from qlib.data.dataset.handler import DataHandlerLP

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        dataset = qlib_dataset(lower_case_view(args.provider, Path(folder)), args)
        frames = dataset.prepare(["train", "valid"], col_set=["feature", "label"], data_key=DataHandlerLP.DK_L)
        print(f"data: {time.perf_counter() - started:.0f}s, train {len(frames[0])} rows, valid {len(frames[1])}")
        timed = time_epochs(kwargs, frames, args.seed, args.epochs, args.ours_kwargs)
        qlib_s, ours_s = timed["qlib_train"] + timed["qlib_valid"], timed["ours"]
        device = training_device(kwargs["GPU"])
        card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        result = {"qlib_epoch_s": round(qlib_s, 2), "ours_epoch_s": round(ours_s, 2),
                  "epoch_ratio": round(ours_s / qlib_s, 3), "device": card, "threads": args.threads,
                  "qlib_train_pass_s": round(timed["qlib_train"], 2),
                  "qlib_valid_eval_s": round(timed["qlib_valid"], 2),
                  "qlib_loop_epoch_s": round(qlib_s + timed["qlib_train_eval"], 2)}  # fmt: skip
        if args.ours_kwargs:
            result["ours_kwargs"] = args.ours_kwargs
        if args.full:
            result |= full_run(kwargs, dataset, learn_set(frames[0]), learn_set(frames[1]), args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
