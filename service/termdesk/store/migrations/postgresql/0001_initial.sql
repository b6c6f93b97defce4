-- Ruleset versions, the active version of each ruleset, the audit log, the decision log.
CREATE TABLE rulesets (
    name TEXT PRIMARY KEY,
    active_version BIGINT NOT NULL,
    latest_version BIGINT NOT NULL
);
CREATE TABLE ruleset_versions (
    name TEXT NOT NULL REFERENCES rulesets (name),
    version BIGINT NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
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
    ruleset_version BIGINT NOT NULL,
    ruleset_digest TEXT NOT NULL,
    decision TEXT NOT NULL,
    violations JSONB NOT NULL,
    package JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX decision_log_ruleset_time ON decision_log (ruleset, created_at);
CREATE INDEX decision_log_time ON decision_log (created_at);
