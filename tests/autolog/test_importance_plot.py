"""The feature-importance PNG: MLflow's figure size, real pixels, per-class bars, tick labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from runyard.autolog._importance_plot import _tick_labels, plot_importance

BAR_BLUE = (0x1F / 255, 0x77 / 255, 0xB4 / 255)  # matplotlib's first cycle colour, C0
BAR_ORANGE = (0xFF / 255, 0x7F / 255, 0x0E / 255)  # C1


def has_colour(image: np.ndarray, rgb: tuple[float, float, float]) -> bool:
    return bool(np.any(np.all(np.abs(image[:, :, :3] - np.array(rgb)) < 0.02, axis=-1)))


def test_few_features_make_a_640_by_480_png_with_bars(tmp_path: Path) -> None:
    path = tmp_path / "imp.png"
    plot_importance(["f0", "f1", "f2", "f3"], [1.0, 2.0, 33.0, 20.0], "weight", str(path))
    image = imread(path)
    assert image.shape[:2] == (480, 640)
    assert has_colour(image, BAR_BLUE)
    assert not has_colour(image, BAR_ORANGE)


def test_the_figure_grows_per_feature_past_ten_and_per_class(tmp_path: Path) -> None:
    many = tmp_path / "many.png"
    plot_importance([f"feature_{i}" for i in range(20)], list(range(20)), "gain", str(many))
    assert imread(many).shape[:2] == (680, 640)  # 4.8 + 20 × 0.1 inches at 100 dpi

    per_class = tmp_path / "classes.png"
    values = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0.0, 1.0, 0.0]]
    plot_importance(["a", "b", "c"], values, "weight", str(per_class))
    image = imread(per_class)
    assert image.shape[:2] == (510, 640)  # 4.8 + 3 × 0.1 inches
    assert has_colour(image, BAR_BLUE)
    assert has_colour(image, BAR_ORANGE)


@pytest.mark.parametrize(
    "values",
    [[-0.5, 0.25, 0.1], [123456.7, 2345678.9, 34567.0], [0.0, 0.0, 0.0]],
    ids=["negative", "millions", "all-zero"],
)
def test_unusual_values_still_plot(tmp_path: Path, values: list[float]) -> None:
    path = tmp_path / "imp.png"
    plot_importance(["a", "b$c$", "d e"], values, "gain", str(path))
    assert imread(path).shape[:2] == (480, 640)


def test_tick_labels_share_decimals_and_scale_millions() -> None:
    assert _tick_labels([0.0, 2.5, 5.0, 7.5], unicode_minus=False) == (
        ["0.0", "2.5", "5.0", "7.5"],
        "",
    )
    assert _tick_labels([0.0, 10.0, 20.0], unicode_minus=False) == (["0", "10", "20"], "")
    assert _tick_labels([-0.2, 0.0, 0.2], unicode_minus=True) == (
        ["\u22120.2", "0.0", "0.2"],
        "",
    )
    assert _tick_labels([0.0, 1e6, 2e6, 3e6], unicode_minus=False) == (
        ["0", "1", "2", "3"],
        "1e6",
    )
    assert _tick_labels([], unicode_minus=False) == ([], "")
