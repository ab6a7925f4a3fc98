"""A deal's risk flag explained the same way wherever it shows: the red cards on Pipeline health and
the deal's own page. The headline first, at most three reasons each way, the next step, and the
full evidence (the model, its validated quality, every signal with its numbers) behind an expander."""
from __future__ import annotations

import streamlit as st

from crm_core.services.pipeline import DealCard


def risk_explanation(card: DealCard) -> None:
    st.markdown(f"**{card.reason_headline or 'No reason given.'}**")
    for title, reasons in (("Raises the risk", card.raises), ("Lowers the risk", card.lowers)):
        if reasons:
            st.caption(title)
            st.text("\n".join(f"• {r}" for r in reasons))  # may quote imported names: plain text
    st.text(f"Next: {card.risk_action or 'no recommendation yet'}")
    with st.expander("Full evidence"):
        st.text("\n".join(f"• {line}" for line in card.evidence) if card.evidence
                else card.risk_reason or "No evidence recorded for this flag yet.")
