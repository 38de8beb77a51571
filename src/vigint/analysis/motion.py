"""Motion detection on small gray frames, pure numpy: no network, no state beyond one camera's background.

Each frame comes at half the analysis size (the decoder's area scaling makes each pixel the mean of 2×2
analysed ones, which is also the light blur that takes out pixel noise), is compared with a running-average
background after removing the frame-wide brightness shift (auto-exposure, a light switched on), thresholded,
and counted over a coarse grid of cells. Motion is a few cells mostly changed; a change over most of the
picture is a lighting change and resets the background instead.

Masks are polygons in fractions of the picture (`vigint.tuning.Mask`), drawn once into a boolean picture
for each picture size: each frame then costs one `&` with it, whatever the masks' corners. The customer may
change the sensitivity and masks of a running camera (`retune`): the thread analysing it reads them once a
frame.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vigint.config import MotionSettings, Rectangle
from vigint.errors import InvalidInputError
from vigint.tuning import Mask, rectangle

CELL_SIZE = 8  # pixels of the detector's picture per grid cell side: 16x16 analysed pixels
CELL_FRACTION = 0.3  # share of a cell's pixels that must change for the cell to count
BACKGROUND_RATE = 0.05  # running-average weight of each new frame: about 4 s of memory at 5 fps


@dataclass(frozen=True)
class MotionReading:
    """What one frame showed."""

    motion: bool
    changed_cells: int
    total_cells: int


@dataclass(frozen=True)
class Tuning:
    """What a camera's customer (or operator) tunes: the sensitivity and the regions ignored."""

    sensitivity: float = 1.0
    masks: tuple[Mask, ...] = ()


def rectangle_masks(rectangles: Sequence[Rectangle]) -> tuple[Mask, ...]:
    """Return config.ini's rectangles (x, y, width, height) as masks; a rectangle reaching past the picture's
    edge is cut at it (config.ini has always allowed that), one with no area inside the picture is no mask."""
    masks = []
    for x, y, width, height in rectangles:
        try:
            masks.append(rectangle(x, y, min(width, 1 - x), min(height, 1 - y)))
        except InvalidInputError:
            continue
    return tuple(masks)


def rasterise(masks: Sequence[Mask], height: int, width: int) -> np.ndarray:
    """Return the picture of `height` × `width` pixels that `masks` leave watched: True where a pixel's
    centre is outside every polygon (even-odd rule, one pass of numpy per edge)."""
    rows = ((np.arange(height, dtype=np.float64) + 0.5) / height)[:, None]
    columns = ((np.arange(width, dtype=np.float64) + 0.5) / width)[None, :]
    hidden = np.zeros((height, width), dtype=bool)
    for mask in masks:
        inside = np.zeros((height, width), dtype=bool)
        corners = mask.points
        for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
            if y0 == y1:
                continue  # a horizontal edge crosses no row's centre line
            crossing = (y0 > rows) != (y1 > rows)  # rows whose centre line the edge crosses
            x_at = x0 + (rows - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crossing & (columns < x_at)
        hidden |= inside
    return ~hidden


class MotionDetector:
    """One camera's detector; feed it every analysed frame in order, in one thread at a time."""

    def __init__(self, settings: MotionSettings = MotionSettings(), masks: Sequence[Mask] = ()):
        self._settings = settings
        self._tuning = Tuning(settings.sensitivity, tuple(masks))
        self._background: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        # The masks and picture size `_mask` was drawn for.
        self._mask_of: tuple[tuple[Mask, ...], tuple[int, int]] | None = None

    @property
    def tuning(self) -> Tuning:
        return self._tuning

    def retune(self, tuning: Tuning) -> None:
        """Take a new sensitivity and masks from the next frame on (callable from another thread: one
        reference is replaced, and each frame reads it once)."""
        self._tuning = tuning

    def forget(self) -> None:
        """Forget the background: the next frame is learnt as it (a camera armed again starts afresh)."""
        self._background = None

    def _watched(self, masks: tuple[Mask, ...], shape: tuple[int, int]) -> np.ndarray:
        """Return the pixels `masks` leave watched at `shape`, drawn again only when either changes."""
        if self._mask_of is None or self._mask_of[0] is not masks or self._mask_of[1] != shape:
            self._mask = rasterise(masks, *shape)
            self._mask_of = (masks, shape)
        return self._mask

    def update(self, pixels: np.ndarray, learn: bool = True, stands_for: int = 1,
               against: np.ndarray | None = None) -> MotionReading:
        """Compare a gray frame (uint8, height × width) with the background (or with the frame `against`: a
        keyframe followed with the one before it), then learn it (unless `learn` is false: a frame seen out of
        order, which analysis will see again in its place), as if it had been seen `stands_for` times in a row
        (a keyframe standing for the frames of its GOP that were not decoded: what came to rest fades into the
        background as fast as it would have)."""
        tuning = self._tuning
        frame = pixels.astype(np.float32)
        if self._background is None or self._background.shape != frame.shape:
            self._background = frame
            return MotionReading(False, 0, 0)
        compared = against is not None and against.shape == pixels.shape
        difference = frame - (against if compared else self._background)
        # A frame-wide brightness shift is not motion; the middle value of every 7th pixel estimates it.
        sample = difference.ravel()[::7]
        difference -= np.partition(sample, sample.size // 2)[sample.size // 2]
        changed = np.abs(difference, out=difference) > self._settings.threshold / tuning.sensitivity
        if tuning.masks:
            changed &= self._watched(tuning.masks, frame.shape)
        cells = self._changed_per_cell(changed)
        total = cells.size
        changed_cells = int(np.count_nonzero(cells >= CELL_FRACTION * CELL_SIZE * CELL_SIZE))
        if changed_cells > self._settings.max_area_fraction * total:
            if learn:
                self._background = frame  # lighting changed: start again from this picture
            return MotionReading(False, changed_cells, total)
        if learn:
            rate = 1 - (1 - BACKGROUND_RATE) ** stands_for
            frame -= self._background
            frame *= rate
            self._background += frame  # in place: the background is this detector's own array
        return MotionReading(changed_cells >= self._settings.min_cells, changed_cells, total)

    def _changed_per_cell(self, changed: np.ndarray) -> np.ndarray:
        """Return how many pixels changed in each whole cell of the grid."""
        size = CELL_SIZE
        rows = changed.shape[0] // size
        columns = changed.shape[1] // size
        grid = changed[:rows * size, :columns * size].reshape(rows, size, columns, size)
        return grid.sum(axis=3, dtype=np.uint16).sum(axis=1)
