"""Back-tests: replay the store's own history and measure how good the agents' decisions were.

`python -m orchestration backtest lead_scoring` (orchestration.backtest.lead_scoring) and
`python -m orchestration backtest pipeline` (orchestration.backtest.pipeline). This package is glue: it may
read the store through crm_core; the learning itself stays in `agents.learning`.
"""
