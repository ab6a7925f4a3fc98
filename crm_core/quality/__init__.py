"""Data quality: what the book's values mean (placeholders, variants, outliers, duplicates) and
the proposals that clean them. See `audit.py` for the audit, `proposals.py` for normalisation."""
