"""`python -m orchestration.scheduler`: the sidecar `make run` starts next to the dashboard."""
from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys

from orchestration.scheduler.worker import main_worker


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _pool(n: int, argv: list[str]) -> int:
    """N worker processes; SIGTERM/SIGINT is passed on and each finishes its current job."""
    children = [subprocess.Popen([sys.executable, "-m", "orchestration.scheduler", *argv, "--worker-id", f"pool-{i}"]) for i in range(n)]

    def _forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    return max(child.wait() for child in children)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.scheduler", description=__doc__)
    parser.add_argument("--once", action="store_true", help="run everything that is due, then exit (tests, cron)")
    parser.add_argument("--workers", type=int, default=1, help="a local pool of N worker processes (PostgreSQL)")
    parser.add_argument("--worker-id", help=argparse.SUPPRESS)
    parser.add_argument("--lease-seconds", type=int, help="job lease length (default CRM_JOB_LEASE_SECONDS)")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls when idle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.workers > 1:
        return _pool(args.workers, _without_workers(argv if argv is not None else sys.argv[1:]))
    return main_worker(once=args.once, worker_id=args.worker_id, lease_seconds=args.lease_seconds, poll_interval=args.poll_interval)


if __name__ == "__main__":
    sys.exit(main())
