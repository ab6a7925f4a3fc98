# The two commands of the quick start: `make run` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

.PHONY: run test install browser imap bench clean-store

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (never `playwright install`: no downloads here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: browser tests will be skipped"; fi; }

# Debian's Dovecot for the mailbox tests, which start their own IMAP server on a loopback port.
imap:
	@command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	  else echo "dovecot missing and not root: mailbox tests will be skipped"; fi; }

run: install
	$(PY) -m crm_core init-db
	$(PY) -m crm_core seed-demo --if-empty
	$(PY) -m crm_core users ensure-admin
	@bash scripts/run.sh $(PY)

# Two workers, one per core; a test file stays on one worker, so its module fixtures (a live
# dashboard, a day-one store) are built once. Every test has its own database, so they never meet.
TEST_WORKERS ?= 2
test: install browser imap
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: install
	$(PY) -m bench

clean-store:
	rm -f data/crm.db data/crm.db-wal data/crm.db-shm
