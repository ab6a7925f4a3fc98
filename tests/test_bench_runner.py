"""`python -m bench`: listing, choosing, small sizes, failure, and a tiny scheduler bench so the bench code cannot rot."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.__main__ import QUICK_ARGS, discover, quick_args

ROOT = Path(__file__).resolve().parent.parent


def _bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_list_names_every_bench_with_its_first_doc_line():
    out = _bench("--list")
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert names == sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    assert "bench_scheduler" in names
    assert re.search(r"^bench_scheduler\s+Scheduler: event-to-new-score latency", out.stdout, re.M)


def test_quick_sizes_only_name_options_the_benches_have():
    benches = discover()
    for name, args in QUICK_ARGS.items():
        source = benches[name].read_text(encoding="utf-8")
        for flag in (a for a in args if a.startswith("--")):
            assert f'add_argument("{flag}"' in source, f"{name} has no {flag} option any more"
        assert quick_args(benches[name]) == args
    assert quick_args(benches["bench_scheduler"]) == ["--quick"]


def _fake_benches(tmp_path: Path) -> None:
    (tmp_path / "bench_good.py").write_text(textwrap.dedent("""
        '''Good: says what it was given.'''
        import argparse, sys
        p = argparse.ArgumentParser()
        p.add_argument("--quick", action="store_true")
        print("good ran, quick =", p.parse_args().quick)
    """))
    (tmp_path / "bench_broken.py").write_text("'''Broken: fails.'''\nimport sys\nprint('broken ran')\nsys.exit(3)\n")
    (tmp_path / "helper.py").write_text("raise SystemExit('not a bench, never run')\n")


def test_every_bench_runs_even_after_one_fails_and_the_exit_code_says_so(tmp_path):
    _fake_benches(tmp_path)
    out = _bench("--dir", str(tmp_path), "--quick")
    assert out.returncode == 1
    assert "broken ran" in out.stdout and "good ran, quick = True" in out.stdout
    assert "not a bench" not in out.stdout + out.stderr
    assert re.search(r"^bench_broken\s+FAILED \(exit 3\)", out.stdout, re.M)
    assert re.search(r"^bench_good\s+ok", out.stdout, re.M)


def test_named_benches_run_alone_and_an_unknown_name_is_refused(tmp_path):
    _fake_benches(tmp_path)
    out = _bench("--dir", str(tmp_path), "good")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "good ran, quick = False" in out.stdout and "broken ran" not in out.stdout
    out = _bench("--dir", str(tmp_path), "good", "nosuch")
    assert out.returncode != 0
    assert "no bench named nosuch" in out.stderr and "bench_good" in out.stderr
    assert "good ran" not in out.stdout


@pytest.mark.slow
def test_the_scheduler_bench_runs_end_to_end_at_its_smallest():
    """SQLite only; one latency contact, two decisions per throughput run, a 40-contact book."""
    out = subprocess.run(
        [sys.executable, "bench/bench_scheduler.py", "--no-pg", "--contacts", "1", "--events", "2", "--scale", "0.02",
         "--interval", "0.2", "--poll-interval", "0.2", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"sqlite\s+offline\s+[\d.]+\s+1\.00x", out.stdout)
    assert re.search(r"sqlite\s+fake LLM via SDK\s+[\d.]+\s+[\d.]+x", out.stdout)
    assert "(2 Messages requests" in out.stdout  # the fake LLM really answered through the SDK
    assert re.search(r"median\s+[\d.]+ s", out.stdout) and "missed 0" in out.stdout
