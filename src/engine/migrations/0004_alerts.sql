-- Alert rules and the alert each rule raises (see src/alerts/).
CREATE TABLE alert_rules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    metric TEXT NOT NULL,
    comparison TEXT NOT NULL,
    threshold REAL NOT NULL,
    duration_seconds INTEGER NOT NULL,
    severity TEXT NOT NULL,
    category TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- One alert per rule: it fires, resolves and fires again, counting occurrences.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL UNIQUE REFERENCES alert_rules(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    value REAL NOT NULL,
    message TEXT NOT NULL,
    first_triggered_at TEXT NOT NULL,
    triggered_at TEXT NOT NULL,
    resolved_at TEXT,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    occurrence_count INTEGER NOT NULL
) STRICT;

CREATE INDEX alerts_by_state ON alerts (state);
