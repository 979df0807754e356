"""Shared pytest configuration for ddbook's tests/."""

def pytest_configure(config):
    config.addinivalue_line("markers", "book: checks the built HTML book in headless Chromium; runs only in `make test`'s "
                                       "browser step (DDBOOK_BOOK_TEST=1), after the book is built")


import pytest


@pytest.fixture(scope="module")
def quadrants():
    "3 classes of 8×8 one-channel images, 20 per class: each class a different bright quadrant plus noise."
    import torch
    from ddbook.core import make_generator
    from ddbook.data import from_tensors
    g = make_generator(0)
    y = torch.arange(3).repeat(20)
    x = torch.rand(len(y), 1, 8, 8, generator=g) * 0.3
    for c in range(3): x[y == c, :, (c // 2) * 4:(c // 2) * 4 + 4, (c % 2) * 4:(c % 2) * 4 + 4] += 0.7
    return from_tensors(x, y, name="quadrants", test_frac=0.25)
