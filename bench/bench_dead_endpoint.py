"""A whole lead-scoring run against a model endpoint that never answers, timed against offline.

Before the circuit breaker, each subject waited the full timeout on every attempt (30 s x 3 =
90 s), so `python -m orchestration run lead_scoring --all` over the demo book's 539 open leads would have
taken about 13 hours. Now the first failed attempts open the breaker and the rest of the run is
decided by the offline reasoner (each decision says so).

What runs, as a user runs it: the demo book (seed 42, scale 1) in a scratch SQLite store, then
`python -m orchestration run lead_scoring --all` twice in fresh interpreters: once with
`--provider offline` (the baseline), once with `--provider anthropic` against a TCP port on
127.0.0.1 that accepts connections and never replies, with the shipped defaults (30 s timeout,
2 retries, breaker after 3 failed attempts, 60 s cool-down) unless --timeout is given.
Prints both wall times, their ratio, and how every subject ended.

    .venv/bin/python bench/bench_dead_endpoint.py [--quick] [--timeout S] [--scale X]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 300.0  # the bar: the whole run within 5 minutes


def dead_endpoint() -> socket.socket:
    """A listening socket nobody reads: connections succeed, requests hang until the client gives up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def run_cli(env: dict[str, str], provider: str, *which: str) -> tuple[float, int, dict]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "orchestration", "run", "lead_scoring", *(which or ["--all"]),
                           "--provider", provider, "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"agents run ({provider}) printed no JSON (exit {proc.returncode}):\n{proc.stderr[-2000:]}") from None
    return elapsed, proc.returncode, report


def outcome_counts(report: dict) -> dict[str, int]:
    counts = {"offline": 0, "anthropic": 0, "failed": 0, "not reached": 0, "other": 0}
    for o in report["outcomes"]:
        if o["failed"]:
            counts["failed"] += 1
        elif o.get("not_reached"):
            counts["not reached"] += 1
        elif o["provider"] in counts:
            counts[o["provider"]] += 1
        else:
            counts["other"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scale 0.3 and a 2 s timeout")
    parser.add_argument("--scale", type=float, default=None, help="demo book scale (default 1: 539 open leads)")
    parser.add_argument("--timeout", type=float, default=None, help="CRM_LLM_TIMEOUT_S for the run (default: the shipped 30)")
    args = parser.parse_args()
    scale = args.scale or (0.3 if args.quick else 1.0)
    timeout = args.timeout or (2.0 if args.quick else None)

    with tempfile.TemporaryDirectory(prefix="bench-dead-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "ANTHROPIC_"))}
        env["CRM_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'crm.db'}"
        for command in (["init-db"], ["seed-demo", "--scale", str(scale)]):
            seeded = subprocess.run([sys.executable, "-m", "crm_core", *command], cwd=ROOT, env=env,
                                    capture_output=True, text=True)
            if seeded.returncode != 0:
                raise SystemExit(f"crm_core {command[0]} failed:\n{seeded.stderr[-2000:]}")
        print((seeded.stdout or seeded.stderr).strip().splitlines()[0])

        # Unmeasured: the first run learns the scoring model from the book and stores it; later runs reuse it.
        run_cli(env, "offline", "--id", "1")
        base_s, base_rc, base = run_cli(env, "offline")
        sock = dead_endpoint()
        host, port = sock.getsockname()
        dead_env = env | {"ANTHROPIC_API_KEY": "sk-ant-bench", "ANTHROPIC_BASE_URL": f"http://{host}:{port}"}
        if timeout:
            dead_env["CRM_LLM_TIMEOUT_S"] = str(timeout)
        try:
            dead_s, dead_rc, dead = run_cli(dead_env, "anthropic")
        finally:
            sock.close()

    counts = outcome_counts(dead)
    subjects = len(dead["outcomes"])
    settled = counts["offline"] + counts["failed"]
    print(f"subjects: {subjects}; timeout {timeout or 30:g} s, 2 retries, breaker after 3 failed attempts")
    print(f"offline baseline: {base_s:.1f} s (exit {base_rc})")
    print(f"dead endpoint:    {dead_s:.1f} s (exit {dead_rc}) = {dead_s / base_s:.2f}x the baseline; "
          f"{dead_s / LIMIT_S:.0%} of the 5-minute bar")
    print("outcomes: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    for o in dead["outcomes"]:
        if o["failed"]:
            print(f"  failed {o['subject_key']}: {o['error']}")
    print(f"without the breaker: about {subjects * (timeout or 30) * 3 / 3600:.1f} h "
          f"({subjects} subjects x {timeout or 30:g} s x 3 attempts)")
    ok = settled == subjects and dead_s < LIMIT_S and dead_rc == 1
    print("PASS" if ok else "FAIL: not every subject was decided offline or marked failed within 5 minutes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
