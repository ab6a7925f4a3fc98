"""`python -m api`: serve the HTTP API with uvicorn on CRM_API_HOST:CRM_API_PORT."""
from __future__ import annotations

import argparse
import sys

import uvicorn

from api.app import create_app
from crm_core.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--host", default=settings.api_host, help="default CRM_API_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, default=settings.api_port, help="default CRM_API_PORT (8600)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    if args.workers > 1:
        uvicorn.run("api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                    log_level="info", proxy_headers=False)
    else:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
