-- Routing, estimated waits, callbacks dialled, high-load events (issue 9).
ALTER TABLE calls ADD COLUMN route TEXT;           -- routing decisions with their reasons
ALTER TABLE calls ADD COLUMN ewt_ms BIGINT;        -- the estimated wait announced
ALTER TABLE callbacks ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE callbacks ADD COLUMN own BIGINT NOT NULL DEFAULT 1;    -- the caller's own number
ALTER TABLE callbacks ADD COLUMN source TEXT NOT NULL DEFAULT 'booked'; -- 'booked' / 'abandoned'
ALTER TABLE callbacks ADD COLUMN wait_ms BIGINT;   -- how long an abandoning caller waited
ALTER TABLE callbacks ADD COLUMN updated_ms BIGINT;
CREATE INDEX callbacks_by_status ON callbacks (status, requested_ms);

CREATE TABLE load_events (
    queue       TEXT NOT NULL,
    policy      TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    high_load   BIGINT NOT NULL,   -- 1: switched on, 0: off
    ewt_ms      BIGINT,
    waiting     BIGINT NOT NULL,
    available   BIGINT NOT NULL
);
CREATE INDEX load_events_by_queue ON load_events (queue, at_ms);
