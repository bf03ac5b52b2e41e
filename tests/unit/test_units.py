"""The audio windowing rule: equal-length windows, last one aligned to the end, nothing dropped or padded."""

import numpy as np
import pytest

from tetrad.layers.units import audio_windows
from tetrad.schemas import StatusError

SR = 16000


def windows(seconds: float, window_s: float = 4.0, min_s: float = 1.0):
    return audio_windows("v", np.arange(int(seconds * SR), dtype=np.float32), SR, window_s, min_s)


def test_short_clip_is_one_window_of_itself():
    (unit,) = windows(2.5)
    assert unit.data.size == int(2.5 * SR) and unit.t_start_s == 0 and unit.t_end_s == 2.5


def test_exact_multiple_has_no_overlap():
    units = windows(8.0)
    assert [(u.t_start_s, u.t_end_s) for u in units] == [(0.0, 4.0), (4.0, 8.0)]


def test_tail_window_is_aligned_to_the_end():
    units = windows(9.0)
    assert [(u.t_start_s, u.t_end_s) for u in units] == [(0.0, 4.0), (4.0, 8.0), (5.0, 9.0)]
    assert {u.data.size for u in units} == {4 * SR}
    assert units[-1].data[-1] == 9 * SR - 1  # the last sample is scored


def test_too_short_is_a_status_not_a_score():
    with pytest.raises(StatusError) as err:
        windows(0.6)
    assert err.value.status == "too_short" and "0.600 s (9600 samples" in str(err.value)
    assert "min_s=1.000 s (16000 samples" in str(err.value)


def test_durations_print_exactly_near_the_limit():
    with pytest.raises(StatusError) as err:  # 15999 samples used to print as "1.00 s, shorter than 1.0 s"
        audio_windows("v", np.zeros(15999, np.float32), SR, 4.0, 1.0)
    assert "audio is 1.000 s (15999 samples" in str(err.value)


def test_min_s_zero_accepts_any_non_empty_clip():
    assert len(audio_windows("v", np.zeros(1, np.float32), SR, 4.0, 0.0)) == 1
    with pytest.raises(StatusError) as err:
        audio_windows("v", np.zeros(0, np.float32), SR, 4.0, 0.0)
    assert err.value.status == "too_short"
