"""The HTTP API (FastAPI on uvicorn): events in, records and the approval queue in and out, signed webhooks.

    python -m api            serve on CRM_API_HOST:CRM_API_PORT (127.0.0.1:8600); docs at /docs

Routes only parse, authenticate and call `crm_core` services; every rule lives there.
"""
