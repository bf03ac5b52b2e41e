"""The cache's image encodings (tetrad.media.pixels): lossless both ways, and loud about box-only rows."""

from __future__ import annotations

import numpy as np
import pytest

from tetrad.media import pixels


@pytest.mark.parametrize("shape", [(380, 380, 3), (96, 96, 1), (7, 13, 3)])
@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_round_trip_is_exact(shape, encoding):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(pixels.decode(pixels.encode(image, encoding), shape, encoding), image)


def test_png_is_smaller_on_a_smooth_picture_and_checks_the_shape():
    ramp = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (256, 256, 3)).copy()
    data = pixels.encode(ramp, "png")
    assert len(data) < ramp.nbytes / 10
    with pytest.raises(ValueError, match="the row says"):
        pixels.decode(data, (256, 256, 1), "png")


def test_a_box_only_row_and_an_unknown_encoding_are_errors():
    with pytest.raises(ValueError, match="face box"):
        pixels.decode(b"", (380, 380, 3), pixels.BOX)
    with pytest.raises(ValueError, match="unknown"):
        pixels.encode(np.zeros((2, 2, 3), np.uint8), "jpeg")
