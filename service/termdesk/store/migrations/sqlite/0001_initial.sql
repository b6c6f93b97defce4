-- Ruleset versions, the active version of each ruleset, the audit log, the decision log.
-- Times are ISO 8601 UTC text (`2026-01-31T12:00:00.000000+00:00`), which sorts in order.
CREATE TABLE rulesets (
    name TEXT PRIMARY KEY,
    active_version INTEGER NOT NULL,
    latest_version INTEGER NOT NULL
);
CREATE TABLE ruleset_versions (
    name TEXT NOT NULL REFERENCES rulesets (name),
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE decision_log (
    decision_id TEXT PRIMARY KEY,
    deal_id TEXT NOT NULL,
    ruleset TEXT NOT NULL,
    ruleset_version INTEGER NOT NULL,
    ruleset_digest TEXT NOT NULL,
    decision TEXT NOT NULL,
    violations TEXT NOT NULL,
    package TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX decision_log_ruleset_time ON decision_log (ruleset, created_at);
CREATE INDEX decision_log_time ON decision_log (created_at);
