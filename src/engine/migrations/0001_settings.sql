CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
) STRICT;
INSERT OR IGNORE INTO settings (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%fZ','now'));
