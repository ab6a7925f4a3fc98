"""Learners for the offline reasoner: pure Python, numpy and scikit-learn, never a database.

The data layer (`crm_core.contexts.lead_scoring`) reads the store into plain records
(`records.ContactRecord`, `records.Outcome`); everything here turns those records into
features, fits and calibrates models, measures them, and explains a score in words.

    records      ContactRecord / Event / Outcome: what the store knows about a contact
    features     typed feature rows (store fields, custom attributes, recency-weighted engagement)
    timeline     outcome rates of similar contacts closed in a trailing window, as of any moment
    training     who is learned from at a cut-off (complete cohorts, and all newer contacts),
                 and the snapshots (at entry, +7, +30, +90 days) a model learns from
    vectorize    typed rows -> a sparse numeric matrix (one-hot categories, scaled numbers)
    drift        features that drift with time, and calendar features (shared by a day's leads)
    leaks        fields whose presence tells the outcome (filled at or because of it): left out
    candidates   the models the scorer chooses among (logistic regressions, gradient-boosted trees)
    selection    rolling time-ordered folds and the rule a candidate must pass to be used
    scorer       the learned scorer: the chosen candidate refitted, calibrated to the newest period
    calibration  Platt scaling on a hold-out
    naive_bayes  the Odoo-style baseline: per-field value frequencies in won vs lost
    prior        the transparent prior used when history is too thin to learn from
    metrics      AUC (with a confidence interval), Brier score, log loss, calibration table
    explain      feature contributions -> sentences ("read the pricing page 3 times today")
    synthetic    reproducible synthetic books with a known signal, and books shaped like real ones
                 with drift (telemarketing, online-course leads) for tests and the bench
"""
