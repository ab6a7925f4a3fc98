"""A real Dovecot IMAP server for the tests: its own config, users and maildirs in a temp dir, on a free loopback port.

Debian's `dovecot-imapd` (installed by `make test` when missing, as root). The server runs in the
foreground as the tests' own process; mail is owned by `nobody`, since Dovecot refuses uid 0.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def why_unavailable() -> str | None:
    if not Path(DOVECOT).exists():
        return "dovecot is not installed (as root: apt-get install -y dovecot-imapd; `make test` does it)"
    if os.geteuid() != 0:
        return "the test IMAP server runs its mail as 'nobody', which needs root"
    return None


@dataclass
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dovecot(user: str = "sales@crm.test", password: str = "inbox-pass") -> Iterator[ImapServer]:
    root = Path(tempfile.mkdtemp(prefix="crm-dovecot-"))
    os.chmod(root, 0o755)
    nobody = pwd.getpwnam("nobody")
    port = _free_port()
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, nobody.pw_uid, nobody.pw_gid)
    (root / "users").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
    (root / "dovecot.conf").write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = {nobody.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                raise RuntimeError(f"dovecot exited: {out}\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot did not answer on its port")
            time.sleep(0.1)
        yield ImapServer(host="127.0.0.1", port=port, user=user, password=password, root=root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
