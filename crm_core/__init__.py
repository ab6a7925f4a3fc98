"""Data layer of the agentic CRM: models, sessions, migrations, import/export, contexts."""
