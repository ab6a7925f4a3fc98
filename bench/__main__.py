"""`python -m bench [NAME ...] [--list] [--quick]`: run the benches in bench/, one after another.

Each `bench_*.py` runs as its own subprocess (a fresh interpreter, as a user runs it), its output
printed as it comes; a summary with every exit code follows, and the exit code is non-zero when
any bench failed. NAME is a bench's file name with or without `bench_` and `.py`.

--quick passes a small size: `--quick` to a bench whose options have it, else the sizes in
QUICK_ARGS below; a bench with neither runs at its usual size. The environment is passed on, so
CRM_TEST_DATABASE_URL reaches the benches that also run on PostgreSQL.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# Small sizes for benches without their own --quick (options as their argparse names them).
QUICK_ARGS: dict[str, list[str]] = {
    "bench_import": ["--rows", "5000"],
    "bench_pages": ["--contacts", "2000", "--deals", "200", "--activities", "20000", "--repeat", "1"],
}


def discover(directory: Path = BENCH_DIR) -> dict[str, Path]:
    return {p.stem: p for p in sorted(directory.glob("bench_*.py"))}


def resolve(names: list[str], benches: dict[str, Path]) -> list[str]:
    chosen, unknown = [], []
    for raw in names:
        stem = Path(raw).name.removesuffix(".py")
        stem = stem if stem.startswith("bench_") else f"bench_{stem}"
        if stem in benches:
            chosen.append(stem)
        else:
            unknown.append(raw)
    if unknown:
        raise SystemExit(f"python -m bench: no bench named {', '.join(unknown)}; "
                         f"there are: {', '.join(benches) or '(none)'}")
    return list(dict.fromkeys(chosen))


def quick_args(path: Path) -> list[str]:
    if re.search(r"add_argument\(\s*[\"']--quick[\"']", path.read_text(encoding="utf-8")):
        return ["--quick"]
    return list(QUICK_ARGS.get(path.stem, []))


def run_one(path: Path, args: list[str]) -> tuple[int, float]:
    print(f"=== {path.stem} {' '.join(args)}".rstrip(), flush=True)
    started = time.perf_counter()
    try:
        rc = subprocess.call([sys.executable, str(path), *args], cwd=ROOT)
    except KeyboardInterrupt:
        rc = 130
    return rc, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="benches to run (default: every one)")
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    parser.add_argument("--quick", action="store_true", help="small sizes where a bench has them")
    parser.add_argument("--dir", type=Path, default=BENCH_DIR, help=argparse.SUPPRESS)  # tests: another folder
    args = parser.parse_args(argv)
    benches = discover(args.dir)
    if args.list:
        for name, path in benches.items():
            doc = _first_doc_line(path)
            print(f"{name:<24} {doc}" if doc else name)
        return 0
    names = resolve(args.names, benches) if args.names else list(benches)
    if not names:
        print(f"python -m bench: no bench_*.py in {args.dir}", file=sys.stderr)
        return 2
    results = []
    for name in names:
        extra = quick_args(benches[name]) if args.quick else []
        rc, seconds = run_one(benches[name], extra)
        results.append((name, rc, seconds))
        print(flush=True)
        if rc == 130:
            break
    print("=== summary")
    for name, rc, seconds in results:
        print(f"{name:<24} {'ok' if rc == 0 else f'FAILED (exit {rc})':<18} {seconds:8.1f} s")
    return 0 if all(rc == 0 for _, rc, _ in results) and len(results) == len(names) else 1


def _first_doc_line(path: Path) -> str:
    """The module docstring's first line, read without importing (benches import heavy things)."""
    import ast

    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except SyntaxError:
        return "(does not parse)"
    return doc.strip().splitlines()[0] if doc else ""


if __name__ == "__main__":
    sys.exit(main())
