"""Shared fixtures. Tests that need the real recordings in ../shared/data skip without them."""
from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm when first imported: set before any import

import torch  # noqa: E402

from kakashi.config import SHARED_DATA  # noqa: E402

torch.set_num_threads(1)  # the tests' models are tiny: one thread avoids oversubscribing the cores


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data (real music, video, motion capture); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (the project's shared/data folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ffmpeg():
    """Path of the ffmpeg binary; skips when it is not installed."""
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg is not installed (the README set-up installs it)")
    return path
