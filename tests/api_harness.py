"""A real uvicorn serving the API on a free loopback port, in a thread, and a user with a real token."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from api.app import create_app
from crm_core.auth.accounts import actor_for
from crm_core.auth.tokens import issue_token
from crm_core.db import unit_of_work
from crm_core.models import User


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_api(settings=None) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class ApiUser:
    user_id: int
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(name: str = "Avery Admin", role: str = "admin") -> ApiUser:
    with unit_of_work() as session:
        user = User(name=name, role=role, email=f"{name.split()[0].lower()}@crm.test")
        session.add(user)
        session.flush()
        _token_id, raw = issue_token(session, user_id=user.id, name="tests", actor=actor_for(user, "cli"))
        return ApiUser(user_id=user.id, name=name, token=raw)


def client(base: str, user: ApiUser | None = None, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=base, headers=user.headers if user else {}, timeout=30, **kwargs)
