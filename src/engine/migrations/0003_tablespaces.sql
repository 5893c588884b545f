-- Tablespaces: named directories holding database files (see src/storage/tablespaces.rs). The
-- built-in `default` (<data_dir>/databases) is not stored. Which database lives where is read
-- from the directories themselves at startup, so a file and its record cannot disagree.
CREATE TABLE tablespaces (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
