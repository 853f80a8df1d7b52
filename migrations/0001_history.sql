-- Customer history: the same SQL runs on SQLite and PostgreSQL (times are
-- milliseconds since 1970 in BIGINT, booleans 0/1).
CREATE TABLE customers (
    number      TEXT PRIMARY KEY,      -- E.164, '+46701234567'
    name        TEXT,
    language    TEXT,
    tier        TEXT,
    value       BIGINT,
    notes       TEXT,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE calls (
    call_id       TEXT PRIMARY KEY,
    started_ms    BIGINT NOT NULL,
    answered_ms   BIGINT,
    ended_ms      BIGINT NOT NULL,
    caller        TEXT NOT NULL,
    dialled       TEXT NOT NULL,
    flow          TEXT NOT NULL,
    flow_version  TEXT NOT NULL,
    path          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    ended_by      TEXT NOT NULL,
    queue         TEXT,
    agent         TEXT,
    wait_ms       BIGINT,
    talk_ms       BIGINT,
    human_key_ms  BIGINT,
    announced_ms  BIGINT,              -- answer to the start of the human announcement
    lookup_ms     BIGINT,              -- the store's answer time (NULL: not in time)
    known         BIGINT NOT NULL
);
CREATE INDEX calls_by_caller ON calls (caller, started_ms);
CREATE INDEX calls_by_start ON calls (started_ms);

CREATE TABLE callbacks (
    call_id       TEXT PRIMARY KEY,
    number        TEXT NOT NULL,
    queue         TEXT NOT NULL,
    requested_ms  BIGINT NOT NULL,
    status        TEXT NOT NULL        -- 'pending', later 'done' / 'failed'
);
CREATE INDEX callbacks_by_number ON callbacks (number);

CREATE TABLE voicemails (
    call_id      TEXT PRIMARY KEY,
    caller       TEXT NOT NULL,
    flow         TEXT NOT NULL,
    recorded_ms  BIGINT NOT NULL,
    file         TEXT NOT NULL,        -- relative to the data folder
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX voicemails_by_caller ON voicemails (caller);
