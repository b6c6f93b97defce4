-- The channel an audited action came through (grpc, console); the console's decision search.
ALTER TABLE audit_log ADD COLUMN channel TEXT NOT NULL DEFAULT 'grpc';
CREATE INDEX decision_log_deal ON decision_log (deal_id, created_at);
