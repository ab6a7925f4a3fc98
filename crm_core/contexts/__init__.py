"""Context builders: the store -> each agent's typed context. One module per agent.

Each module `crm_core.contexts.<agent>` defines:
    prepare(session, *, as_of) -> prepared value or None
        what the run learns once before building (a scorer, a playbook); None where nothing is learned
    subjects(session, *, as_of) -> list[int]
        the subject ids a full run (`--all`) covers at `as_of`
    build(session, subject_ids, *, as_of, prepared=None) -> list[<Agent>.Context]
        the contexts for those ids, as the store stood at `as_of` (nothing after it is read)

`orchestration.registry` maps each agent to its builder module (typed by `ContextBuilder`).
"""
