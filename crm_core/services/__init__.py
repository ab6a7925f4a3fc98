"""What the dashboard pages (and anything else that shows the book) call.

Read side: each function takes a session and plain values and returns pydantic models or a
DataFrame; queries aggregate in SQL and page large tables, so a page costs the same on a
100,000-contact book as on the demo. Write side: snoozing a flag here, everything else through
thin wrappers over `crm_core.oversight` and `crm_core.importing`, which own those rules.

    store.prepare_store(url)                                  migrations + default policies
    users.list_users(session) / add_user / set_password / set_role / set_active / ensure_first_admin   (actor=, manage_users)
    pipeline.pipeline_board(session, owner_id=None, actor=)   stages, flags, weighted value, red list (a rep: own deals)
    pipeline.stage_deals(session, stage=, actor=, owner_id=, risk=, limit=, offset=) / deal_card(..., actor=)
    pipeline.snooze_deal(session, deal_id, *, until, reason, actor) / resume_deal_flag(...)   (a rep: own deals, else act_on_any)
    owners.owner_choices(session, actor=)                     the Owner picker (a rep: only themselves)
    fx.set_rate / import_rates_csv / set_reporting_currency (actor=, edit_exchange_rates)
    leads.lead_table(session, filters, limit, offset, actor=) / score_distribution / score_history (actor=; a rep: own contacts) / lead_filter_options
    records.search_records / contact_detail / deal_detail / contact_timeline / deal_timeline (actor=; a rep: own records, else view_all)
    meetings.meetings_overview(session, actor=, owner_id=None, ...)
    agent_ops.heartbeats / scheduler_status / agent_usage_by_day / runtime_config
    approvals.approval_queue(..., actor=) / decided / approve_item / reject_item / bulk_approve_items / revert_item (actor=)
    activity_log.audit_log / decision_log / revertable / outbox / actor_names
    oversight_settings.policies / save_policies / supervision / supervise (actor=) / calibration / rights_table
    imports.read_upload / suggested_mapping / dry_run / run_import / save_mapping (actor=, import_data) / rejects_csv
"""
