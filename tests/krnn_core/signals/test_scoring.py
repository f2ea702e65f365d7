"""The per-day verdicts of the spread and model-age checks, from the stats of each day's signals."""

import pandas as pd

from krnn_core.signals.scoring import model_age_problems, spread_problems

STATS = pd.DataFrame(
    {
        "datetime": pd.to_datetime(["2024-07-01", "2024-07-02", "2024-07-03"]),
        "score_std": [0.2, 0.0004, 0.15],
        "model_version": ["krnn-a", "krnn-a", "krnn-b"],
        "label_end": pd.to_datetime(["2024-06-26", "2024-06-26", "2024-04-01"]),
    }
)


def test_a_collapsed_day_fails_the_spread_check_alone():
    assert spread_problems(STATS, 0.001) == {
        pd.Timestamp("2024-07-01"): [],
        pd.Timestamp("2024-07-02"): ["score std 0.0004 below the floor 0.001"],
        pd.Timestamp("2024-07-03"): [],
    }


def test_a_day_scored_by_an_old_model_fails_the_age_check_alone():
    problems = model_age_problems(STATS, 60)
    assert problems[pd.Timestamp("2024-07-03")] == [
        "model krnn-b saw labels up to 2024-04-01, 93 days before (limit 60)"
    ]
    assert problems[pd.Timestamp("2024-07-01")] == problems[pd.Timestamp("2024-07-02")] == []
