"""Import speed: 100,000 contacts from CSV into a fresh store, against a plain DataFrame.to_sql.

    .venv/bin/python bench/bench_import.py [--rows 100000] [--url postgresql://...]

The import does everything a user's import does (read with encoding/delimiter detection, map,
type and validate every row, look up keys, plan accounts and owners, find likely duplicates,
bulk insert, queue merge proposals, commit). The baseline writes the same rows, as pandas
read them, with `DataFrame.to_sql` into an empty table on the same kind of store. Both run
in this process, one after the other; the ratio is import time / to_sql time.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crm_core.db import dispose_engines, migrate, normalise_url, unit_of_work  # noqa: E402
from crm_core.importing import apply_import, plan_import, read_csv  # noqa: E402
from crm_core.models import Contact  # noqa: E402

FIRST = ["Ana", "Bill", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kara", "Luis", "Mia",
         "Noah", "Olga", "Pedro", "Qing", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Xena", "Yusuf", "Zoe",
         "Aisha", "Bruno", "Carmen", "Dmitri", "Elena", "Fatima", "Gustav", "Hana", "Igor", "Julia", "Kenji",
         "Lena", "Marco", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomás", "Ursula", "Viktor", "Wen",
         "Yara", "Zainab", "Amir", "Beatriz", "Chen", "Diego", "Eva", "Felix", "Giulia", "Hugo", "Ivan", "Joana"]
LAST = ["Smith", "Souza", "Müller", "Martin", "Rossi", "Kim", "Nowak", "Garcia", "Silva", "Dubois", "Jensen",
        "Okafor", "Tanaka", "Novak", "Khan", "Lopez", "Costa", "Weber", "Ivanova", "Haddad", "Moreau", "Berg",
        "Andersen", "Bianchi", "Cohen", "Dimitrov", "Eriksson", "Fischer", "Gonzalez", "Hansen", "Ibrahim",
        "Johansson", "Kowalski", "Larsen", "Mendes", "Nakamura", "Olsen", "Petrov", "Quinn", "Ramos", "Schmidt",
        "Takahashi", "Usman", "Varga", "Wagner", "Xu", "Yilmaz", "Zhang", "Almeida", "Becker", "Castro",
        "Duarte", "Evans", "Ferreira", "Gomes", "Horvat", "Ito", "Jovanovic", "Kruger", "Lindqvist"]
TITLES = ["CEO", "CTO", "VP Sales", "Head of Ops", "Buyer", "Engineer", "Marketing Manager", "CFO"]
SOURCES = ["Organic Search", "Paid Search", "Referral", "Event", "Social", "Email"]
STAGES = ["Lead", "MQL", "SQL", "Opportunity", "Customer", "Unqualified"]


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    """A HubSpot-style export: ~20 people per company, some owners, dates, two custom columns."""
    rng = random.Random(seed)
    companies = max(rows // 20, 1)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("Email,First Name,Last Name,Phone Number,Company Name,Job Title,Lead Source,Lifecycle Stage,"
                     "Contact owner,Create Date,Country,Seats\n")
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = rng.randrange(companies)
            phone = f"+1 {rng.randrange(200, 999)} 555 {i % 10000:04d}" if rng.random() < 0.7 else ""
            created = f"{rng.randrange(1, 13)}/{rng.randrange(1, 29)}/20{rng.randrange(21, 25)}"
            handle.write(f"{first.lower()}.{last.lower()}.{i}@company{company}.example,{first},{last},{phone},"
                         f"Company {company},{rng.choice(TITLES)},{rng.choice(SOURCES)},{rng.choice(STAGES)},"
                         f"Rep {company % 12},{created},{rng.choice(['US', 'DE', 'BR', 'PT'])},{rng.randrange(1, 500)}\n")


def fresh_store(base_url: str | None, tmp: Path, name: str) -> str:
    if base_url is None:
        return f"sqlite:///{tmp / (name + '.db')}"
    admin = normalise_url(base_url)
    db = f"bench_{name}_{int(time.time())}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    engine.dispose()
    return make_url(admin).set(database=db).render_as_string(hide_password=False)


def drop_store(base_url: str | None, url: str) -> None:
    if base_url is None:
        return
    engine = create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


def bench_import(csv_path: Path, url: str, *, migrate_first: bool = True) -> tuple[float, dict[str, float], int, int]:
    if migrate_first:
        migrate(url)
    phases: dict[str, float] = {}
    start = time.perf_counter()
    table = read_csv(csv_path)
    phases["read"] = time.perf_counter() - start
    with unit_of_work(url) as session:
        t = time.perf_counter()
        plan = plan_import(session, "contacts", table)
        phases["validate+match"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = apply_import(session, plan)
        phases["write"] = time.perf_counter() - t
        t = time.perf_counter()
    phases["commit"] = time.perf_counter() - t
    total = time.perf_counter() - start
    with unit_of_work(url, readonly=True) as session:
        stored = session.scalar(select(func.count()).select_from(Contact))
    return total, phases, stored, len(summary.merge_proposals)


def bench_to_sql(csv_path: Path, url: str) -> float:
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    engine = create_engine(normalise_url(url))
    start = time.perf_counter()
    frame.to_sql("contacts_baseline", engine, if_exists="append", index=False)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--url", help="a PostgreSQL server URL to bench on instead of a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        csv_path = tmp / "contacts.csv"
        make_csv(csv_path, args.rows)
        import_url = fresh_store(args.url, tmp, "import")
        baseline_url = fresh_store(args.url, tmp, "baseline")
        try:
            total, phases, stored, proposals = bench_import(csv_path, import_url)
            again, _, _, _ = bench_import(csv_path, import_url, migrate_first=False)
            baseline = bench_to_sql(csv_path, baseline_url)
        finally:
            dispose_engines()
            drop_store(args.url, import_url)
            drop_store(args.url, baseline_url)
    backend = "postgresql" if args.url else "sqlite"
    print(f"import of {args.rows:,} contacts ({backend}): {total:.2f} s, {args.rows / total:,.0f} rows/s; "
          f"{stored:,} stored, {proposals:,} merge proposals queued")
    print("  " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))
    print(f"DataFrame.to_sql of the same rows: {baseline:.2f} s, {args.rows / baseline:,.0f} rows/s")
    print(f"ratio import / to_sql: {total / baseline:.2f}x")
    print(f"the same file imported again (every row unchanged): {again:.2f} s")


if __name__ == "__main__":
    main()
