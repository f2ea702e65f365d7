from krnn_core.data.qlib_runtime import init_qlib
from tests.fixtures import CN_TINY_2019


def test_a_new_region_on_the_same_folder_initializes_qlib_again():
    from qlib.config import C

    init_qlib(CN_TINY_2019, "us")
    assert (C.region, C.trade_unit) == ("us", 1)
    init_qlib(CN_TINY_2019, "cn")
    assert (C.region, C.trade_unit) == ("cn", 100)  # Qlib's China A-share lot
