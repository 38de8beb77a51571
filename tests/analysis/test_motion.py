import numpy as np
import pytest

from vigint.analysis.motion import MotionDetector, Tuning, rasterise, rectangle_masks
from vigint.config import MotionSettings
from vigint.tuning import Mask

RNG = np.random.default_rng(3)
BACKGROUND = RNG.integers(40, 160, (90, 160)).astype(np.uint8)  # the detector's picture of a 320×180 frame


def noisy(picture: np.ndarray, amplitude: int = 6) -> np.ndarray:
    noise = RNG.integers(-amplitude, amplitude + 1, picture.shape)
    return np.clip(picture.astype(int) + noise, 0, 255).astype(np.uint8)


def with_square(x: int, size: int = 20, picture: np.ndarray = BACKGROUND) -> np.ndarray:
    frame = picture.copy()
    frame[30:30 + size, x:x + size] = 240
    return frame


def readings(frames) -> list[bool]:
    detector = MotionDetector()
    return [detector.update(frame).motion for frame in frames]


def test_a_moving_object_is_motion():
    results = readings([noisy(BACKGROUND)] * 5 + [noisy(with_square(10 + 7 * i)) for i in range(10)])
    assert not any(results[:5]) and all(results[5:])


def test_sensor_noise_is_not_motion():
    assert not any(readings([noisy(BACKGROUND, 10) for _ in range(100)]))


def test_a_brightness_jump_is_not_motion():
    brighter = np.clip(BACKGROUND.astype(int) + 60, 0, 255).astype(np.uint8)
    darker = (BACKGROUND * 0.6).astype(np.uint8)  # auto-exposure: a gain, not an offset
    frames = [noisy(BACKGROUND)] * 10 + [noisy(brighter)] * 20 + [noisy(darker)] * 20
    assert not any(readings(frames))


def test_a_tiny_change_is_not_motion_and_masks_hide_regions():
    assert not any(readings([BACKGROUND] * 3 + [with_square(50, size=3)] * 5))  # one cell at most
    masked = MotionDetector(masks=rectangle_masks(((0.0, 0.0, 0.5, 1.0),)))
    results = [masked.update(frame).motion for frame in [BACKGROUND] * 3 + [with_square(10 + 2 * i) for i in range(8)]]
    assert not any(results)  # the square stays in the left half


def test_sensitivity_scales_the_threshold():
    faint = BACKGROUND.copy()
    faint[30:50, 50:70] = np.clip(BACKGROUND[30:50, 50:70].astype(int) + 18, 0, 255)
    assert not any(readings([BACKGROUND] * 3 + [faint] * 3))
    sensitive = MotionDetector(MotionSettings(sensitivity=2.0))
    assert [sensitive.update(f).motion for f in [BACKGROUND] * 3 + [faint]][-1]


def test_a_polygon_mask_hides_only_what_it_covers():
    triangle = Mask(((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)))  # the top left half of the picture, cut diagonally
    watched = rasterise([triangle], 90, 160)
    assert not watched[0, 0] and watched[89, 159] and watched.sum() == pytest.approx(90 * 160 / 2, rel=0.03)
    masked = MotionDetector(masks=(triangle,))
    top_left = [BACKGROUND] * 3 + [with_square(10 + 2 * i, size=15) for i in range(8)]  # rows 30-45, x 10-39
    assert not any(masked.update(frame).motion for frame in top_left)
    bottom_right = BACKGROUND.copy()
    bottom_right[60:85, 120:150] = 240
    masked.update(BACKGROUND)
    assert masked.update(bottom_right).motion


def test_a_running_detector_takes_new_masks_and_sensitivity_at_its_next_frame():
    detector = MotionDetector(masks=rectangle_masks(((0.0, 0.0, 1.0, 1.0),)))
    frames = [BACKGROUND] * 3 + [with_square(10 + 7 * i) for i in range(6)]
    assert not any(detector.update(frame).motion for frame in frames[:5])
    detector.retune(Tuning(1.0, ()))
    assert all(detector.update(frame).motion for frame in frames[5:])
    detector.forget()
    assert not detector.update(frames[-1]).motion  # learnt afresh: the first frame is the background
