-- The queue figures served over HTTP (issue 10).
ALTER TABLE calls ADD COLUMN closed BIGINT NOT NULL DEFAULT 0;  -- asked for a queue while it was closed
ALTER TABLE calls ADD COLUMN to_human_ms BIGINT;                -- answer to an agent connected (human key pressed)
CREATE INDEX calls_by_queue ON calls (queue, started_ms);

-- What agents set in wrap-up on the agent page.
CREATE TABLE call_outcomes (
    agent      TEXT NOT NULL,
    caller     TEXT,
    queue      TEXT,
    at_ms      BIGINT NOT NULL,
    resolved   BIGINT NOT NULL,   -- 1: the customer's matter was resolved
    note       TEXT
);
CREATE INDEX call_outcomes_by_caller ON call_outcomes (caller, at_ms);
