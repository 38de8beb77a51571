"""Motion detection on small gray frames, pure numpy: no network, no state beyond one camera's background.

Each frame is halved (a 2×2 mean, which is also the light blur that takes out pixel noise), compared
with a running-average background after removing the frame-wide brightness shift (auto-exposure, a
light switched on), thresholded, and counted over a coarse grid of cells. Motion is a few cells mostly
changed; a change over most of the picture is a lighting change and resets the background instead.
"""

from dataclasses import dataclass

import numpy as np

from vigint.config import MotionSettings, Rectangle

CELL_SIZE = 8  # pixels of the halved frame per grid cell side: 16x16 analysed pixels
CELL_FRACTION = 0.3  # share of a cell's pixels that must change for the cell to count
BACKGROUND_RATE = 0.05  # running-average weight of each new frame: about 4 s of memory at 5 fps


@dataclass(frozen=True)
class MotionReading:
    """What one frame showed."""

    motion: bool
    changed_cells: int
    total_cells: int


class MotionDetector:
    """One camera's detector; feed it every analysed frame in order."""

    def __init__(self, settings: MotionSettings = MotionSettings(), masks: tuple[Rectangle, ...] = ()):
        self._settings = settings
        self._masks = masks
        self._background: np.ndarray | None = None
        self._mask: np.ndarray | None = None

    def _halve(self, pixels: np.ndarray) -> np.ndarray:
        height, width = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
        # Four strided adds in uint16 cost a fraction of a reshape-and-mean over two axes.
        quad = pixels[0:height:2, 0:width:2].astype(np.uint16)
        quad += pixels[1:height:2, 0:width:2]
        quad += pixels[0:height:2, 1:width:2]
        quad += pixels[1:height:2, 1:width:2]
        return quad.astype(np.float32) * 0.25

    def _build_mask(self, shape: tuple[int, int]) -> np.ndarray:
        mask = np.ones(shape, dtype=bool)
        height, width = shape
        for x, y, w, h in self._masks:
            mask[int(y * height): int((y + h) * height), int(x * width): int((x + w) * width)] = False
        return mask

    def update(self, pixels: np.ndarray, learn: bool = True) -> MotionReading:
        """Compare a gray frame (uint8, height × width) with the background, then learn it (unless `learn` is
        false: a frame seen out of order, which analysis will see again in its place)."""
        frame = self._halve(pixels)
        if self._background is None or self._background.shape != frame.shape:
            self._background, self._mask = frame, self._build_mask(frame.shape)
            return MotionReading(False, 0, 0)
        difference = frame - self._background
        # A frame-wide brightness shift is not motion; every 7th pixel estimates it well enough, faster.
        difference -= np.median(difference.ravel()[::7])
        changed = (np.abs(difference) > self._settings.threshold / self._settings.sensitivity) & self._mask
        cells = self._cells(changed)
        total = cells.size
        changed_cells = int(np.count_nonzero(cells >= CELL_FRACTION))
        if changed_cells > self._settings.max_area_fraction * total:
            if learn:
                self._background = frame  # lighting changed: start again from this picture
            return MotionReading(False, changed_cells, total)
        if learn:
            self._background = (1 - BACKGROUND_RATE) * self._background + BACKGROUND_RATE * frame
        return MotionReading(changed_cells >= self._settings.min_cells, changed_cells, total)

    def _cells(self, changed: np.ndarray) -> np.ndarray:
        size = CELL_SIZE
        rows, columns = changed.shape[0] // size, changed.shape[1] // size
        grid = changed[:rows * size, :columns * size].reshape(rows, size, columns, size)
        return grid.sum(axis=3, dtype=np.uint16).sum(axis=1) / (size * size)
