"""Back-tests: replay the store's own history and measure how good the agents' decisions were.

`python -m agents backtest lead_scoring` (agents.backtest.lead_scoring) and
`python -m agents backtest pipeline` (agents.backtest.pipeline). This package is glue: it may
read the store through crm_core; the learning itself stays in `agents.learning`.
"""
