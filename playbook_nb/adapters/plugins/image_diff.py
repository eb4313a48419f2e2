"""Screenshot comparison with pixelmatch (the Python port of mapbox/pixelmatch).

`compare(actual, baseline, diff_path)` counts the pixels that differ (pixelmatch's colour `threshold`, 0.1 by
default, ignores anti-aliasing noise) and writes pixelmatch's diff image: changed pixels in red over a faded
copy of the baseline. Images of different sizes are compared on the larger canvas, so the missing area counts
as changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_DIFF_RATIO = 0.01  # OPS-001: flag a visual regression above 1 % of the pixels
DEFAULT_PIXEL_THRESHOLD = 0.1  # pixelmatch's own default colour distance


@dataclass
class DiffResult:
    changed_pixels: int
    total_pixels: int
    size: tuple[int, int]
    baseline_size: tuple[int, int]
    diff_path: Path

    @property
    def ratio(self) -> float:
        return self.changed_pixels / self.total_pixels if self.total_pixels else 0.0

    @property
    def percent(self) -> str:
        return f"{self.ratio * 100:.2f}%"


def _canvas(image, size):
    from PIL import Image

    if image.size == size:
        return image
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    canvas.paste(image, (0, 0))
    return canvas


def compare(
    actual: Path, baseline: Path, diff_path: Path, *, pixel_threshold: float = DEFAULT_PIXEL_THRESHOLD
) -> DiffResult:
    from PIL import Image
    from pixelmatch.contrib.PIL import pixelmatch

    with Image.open(actual) as a, Image.open(baseline) as b:
        img_a, img_b = a.convert("RGBA"), b.convert("RGBA")
    size = (max(img_a.width, img_b.width), max(img_a.height, img_b.height))
    canvas_a, canvas_b = _canvas(img_a, size), _canvas(img_b, size)
    diff = Image.new("RGBA", size)
    changed = pixelmatch(canvas_b, canvas_a, diff, threshold=pixel_threshold, includeAA=False)
    diff_path.parent.mkdir(parents=True, exist_ok=True)
    diff.save(diff_path)
    return DiffResult(changed, size[0] * size[1], img_a.size, img_b.size, diff_path)
