"""Combining seed members' scores: per-day z-score mean (Qlib's AverageEnsemble) and per-day rank mean."""

import numpy as np
import pandas as pd
import pytest

from krnn_core.model.ensemble import combine_scores, ensemble_version_id, member_seeds

INDEX = pd.MultiIndex.from_product(
    [pd.to_datetime(["2024-01-02", "2024-01-03"]), ["A", "B", "C"]], names=["datetime", "instrument"]
)
# day 1: two members of different scales; day 2: member m0 is constant (a collapsed member)
SCORES = pd.DataFrame({"m0": [1.0, 2.0, 3.0, 5.0, 5.0, 5.0], "m1": [30.0, 10.0, 20.0, 0.0, 2.0, 4.0]}, index=INDEX)


def test_zscore_mean_standardizes_each_member_within_the_day():
    combined = combine_scores(SCORES, "zscore")
    # day 1: m0 -> (-1, 0, 1) (mean 2, std 1), m1 -> (1, -1, 0) (mean 20, std 10)
    # day 2: m0 constant adds 0, m1 -> (-1, 0, 1) (mean 2, std 2)
    np.testing.assert_allclose(combined.to_numpy(), [0.0, -0.5, 0.5, -0.5, 0.0, 0.5])
    assert combined.index.equals(INDEX)


def test_rank_mean_averages_centred_percentile_ranks():
    combined = combine_scores(SCORES, "rank")
    # day 1: m0 ranks (1/3, 2/3, 1), m1 (1, 1/3, 2/3), less 0.5; day 2: m0 all tied at 2/3, m1 (1/3, 2/3, 1)
    np.testing.assert_allclose(combined.to_numpy(), [1 / 6, 0.0, 1 / 3, 0.0, 1 / 6, 1 / 3], atol=1e-15)


@pytest.mark.parametrize("how", ["zscore", "rank"])
def test_a_days_combined_scores_depend_on_that_day_alone(how):
    other = SCORES.copy()
    other.loc["2024-01-03", "m1"] = [100.0, -3.0, 7.0]
    first_day = INDEX.get_level_values("datetime") == "2024-01-02"
    pd.testing.assert_series_equal(combine_scores(other, how)[first_day], combine_scores(SCORES, how)[first_day])


def test_zscore_mean_is_qlibs_average_ensemble():
    from qlib.model.ens.ensemble import AverageEnsemble

    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-02", periods=4), [f"S{i}" for i in range(7)]], names=["datetime", "instrument"]
    )
    scores = pd.DataFrame(np.random.default_rng(0).normal(size=(len(index), 3)), index=index, columns=["a", "b", "c"])
    qlib = AverageEnsemble()({name: scores[[name]] for name in scores.columns})
    np.testing.assert_allclose(combine_scores(scores, "zscore").to_numpy(), qlib.to_numpy(), rtol=1e-12)


def test_an_unknown_combination_is_refused_by_name():
    with pytest.raises(ValueError, match="combine='max'"):
        combine_scores(SCORES, "max")


def test_ensemble_id_names_its_members_and_combination():
    first = ensemble_version_id(["krnn-a", "krnn-b"], "zscore")
    assert first.startswith("krnn-ens-") and first == ensemble_version_id(["krnn-b", "krnn-a"], "zscore")
    assert first != ensemble_version_id(["krnn-a", "krnn-b"], "rank")
    assert first != ensemble_version_id(["krnn-a", "krnn-c"], "zscore")


def test_member_seeds_count_up_from_the_configs_seed():
    assert member_seeds(42, 3) == [42, 43, 44]
    assert member_seeds(None, 2) == [None, None]
