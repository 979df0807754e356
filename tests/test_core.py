"""ddbook.core across processes: a smoke run's folder does not outlive the Python that made it."""
import os, subprocess, sys


def test_smoke_dir_is_removed_at_exit():
    code = "from ddbook.core import smoke_dir; d = smoke_dir('runs/x'); open(d + '/f', 'w').close(); print(d)"
    d = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.basename(d).startswith("ddbook-smoke-x-") and not os.path.exists(d)
