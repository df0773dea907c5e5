"""What a written figure must be: a PNG that decodes, of a real size, with data drawn on it.

Text, axes, ticks and frames are black and grey (red = green = blue); data are drawn in colour
(matplotlib's colour cycle, colour maps).  Measured on matplotlib's own output: an empty figure
and a figure of empty axes have no coloured pixel; one plotted line colours 0.5 % of a 640 x 480
figure; the run figures colour 0.25 % (trust.png: six scatter plots of 24 points) to 42 %.
"""

import numpy as np
from matplotlib.image import imread

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_figure(path, min_side: int = 200, min_coloured: float = 1e-3) -> np.ndarray:
    """``path`` is a PNG image at least ``min_side`` pixels on each side, with at least
    ``min_coloured`` of its pixels in colour (not grey: the data, not the axes); returns the
    (H, W, channels) image."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, f"{path} is not a PNG file"
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4), (path, image.shape)
    assert min(image.shape[:2]) >= min_side, (path, image.shape)
    rgb = image[..., :3]
    coloured = float(((rgb.max(axis=2) - rgb.min(axis=2)) > 0.1).mean())
    assert coloured >= min_coloured, f"{path}: {coloured:.2%} of its pixels in colour: no data drawn on it"
    return image
