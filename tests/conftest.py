"""Shared pytest configuration for ddbook's tests/."""

def pytest_configure(config):
    config.addinivalue_line("markers", "book: checks the built HTML book in headless Chromium; runs only in `make test`'s "
                                       "browser step (DDBOOK_BOOK_TEST=1), after the book is built")
