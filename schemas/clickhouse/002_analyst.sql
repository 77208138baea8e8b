-- Analyst and investigator tables: the organisation directory, scorecard
-- history, dead letters, lookup tables by request id and patient token, and
-- daily rollups. Runs on ClickHouse 18.16 and current releases: no
-- LowCardinality, DateTime64, data-skipping indexes (18.16 cannot parse
-- INDEX ... TYPE), TTL or codecs; materialized views use the TO form.

-- The organisation directory, loaded from a CSV file (chstore.LoadOrganizations).
-- One row per identifier; a reload writes a higher version and the newest
-- row of each identifier wins.
CREATE TABLE IF NOT EXISTS organizations (
    identifier  String,
    org_id      String,
    name        String,
    org_type    String,
    developer   String,
    networks    Array(String),
    version     UInt64,
    loaded_at   DateTime('UTC')
) ENGINE = ReplacingMergeTree(version)
ORDER BY identifier;

-- The deduplicated directory: one row per identifier, its latest load.
CREATE VIEW IF NOT EXISTS directory AS
SELECT identifier, org_id, name, org_type, developer, networks, version, loaded_at
FROM organizations FINAL;

-- Every scorecard produced, one row per network, granularity, period and run.
-- A retried insert of the same run has the same key and collapses.
CREATE TABLE IF NOT EXISTS scorecards (
    network          String,
    granularity      String,
    period           String,
    period_start     DateTime('UTC'),
    period_start_ms  Int64,
    period_end_ms    Int64,
    generated_at     DateTime('UTC'),
    generated_at_ms  Int64,
    formula_version  String,
    requests         UInt64,
    suspect          UInt64,
    suspect_rate     Float64,
    suspect_ci_low   Float64,
    suspect_ci_high  Float64,
    ttf_count        UInt64,
    ttf_p50_ms       UInt64,
    ttf_p90_ms       UInt64,
    ttf_p99_ms       UInt64,
    within_sla_rate  Float64,
    scorecard_json   String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(period_start)
ORDER BY (network, granularity, period_start, generated_at_ms);

-- The latest scorecard of each network, granularity and period.
CREATE VIEW IF NOT EXISTS scorecards_latest AS
SELECT
    network,
    granularity,
    period_start,
    argMax(period, generated_at_ms)          AS period,
    max(generated_at)                        AS generated_at,
    argMax(formula_version, generated_at_ms) AS formula_version,
    argMax(requests, generated_at_ms)        AS requests,
    argMax(suspect, generated_at_ms)         AS suspect,
    argMax(suspect_rate, generated_at_ms)    AS suspect_rate,
    argMax(suspect_ci_low, generated_at_ms)  AS suspect_ci_low,
    argMax(ttf_p50_ms, generated_at_ms)      AS ttf_p50_ms,
    argMax(ttf_p90_ms, generated_at_ms)      AS ttf_p90_ms,
    argMax(ttf_p99_ms, generated_at_ms)      AS ttf_p99_ms,
    argMax(within_sla_rate, generated_at_ms) AS within_sla_rate,
    argMax(scorecard_json, generated_at_ms)  AS scorecard_json
FROM scorecards
GROUP BY network, granularity, period_start;

-- What a stage could not process: one row per message of the DLQ stream.
-- The raw bytes stay in the stream (DLQ, sequence dlq_seq); only where they
-- are and why they failed come here. The sequence is unique per stream, so
-- a redelivered dead letter collapses.
CREATE TABLE IF NOT EXISTS dead_letters (
    stage        String,
    network      String,
    format       String,
    remote       String,
    reason       String,
    received_at  DateTime('UTC'),
    received_ms  Int64,
    stream       String,
    dlq_subject  String,
    dlq_seq      UInt64,
    size         UInt32
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (stage, network, received_at, dlq_seq);

-- Investigator lookups. ClickHouse 18.16 has no data-skipping indexes, and
-- the main tables are ordered for analysts (by network, time, id), so a
-- lookup by request id or patient token would scan everything. These tables
-- are ordered by what the investigator has in hand and give the keys of the
-- main tables. Fed at insert time; duplicates collapse (ReplacingMergeTree)
-- and are harmless for a lookup anyway.
CREATE TABLE IF NOT EXISTS outcomes_by_request (
    request_id    String,
    network       String,
    outcome_id    UUID,
    version       UInt64,
    requested_at  DateTime('UTC')
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (request_id, network, outcome_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS outcomes_by_request_mv TO outcomes_by_request AS
SELECT request_id, network, outcome_id, version, requested_at
FROM exchange_outcomes;

CREATE TABLE IF NOT EXISTS outcomes_by_patient (
    patient_token String,
    network       String,
    outcome_id    UUID,
    version       UInt64,
    requested_at  DateTime('UTC')
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (patient_token, network, outcome_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS outcomes_by_patient_mv TO outcomes_by_patient AS
SELECT patient_token, network, outcome_id, version, requested_at
FROM exchange_outcomes
WHERE patient_token != '';

CREATE TABLE IF NOT EXISTS events_by_message (
    message_id  String,
    network     String,
    event_time  DateTime('UTC'),
    event_id    UUID
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (message_id, network, event_time, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_message_mv TO events_by_message AS
SELECT message_id, network, event_time, event_id
FROM exchange_events;

-- Daily message counts. An event never changes (its id is derived from its
-- bytes), so the only duplicates are re-sent copies and writer retries, which
-- carry the same event_id: uniqExact over event_id counts each message once
-- however often it was inserted, so this rollup is exact straight from the
-- materialized view.
CREATE TABLE IF NOT EXISTS events_daily (
    day             Date,
    network         String,
    requester_org   String,
    responder_org   String,
    role            String,
    status          String,
    exception_code  String,
    messages        AggregateFunction(uniqExact, UUID)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (network, day, responder_org, role, status, exception_code, requester_org);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_daily_mv TO events_daily AS
SELECT
    toDate(event_time) AS day,
    network,
    requester_org,
    responder_org,
    role,
    status,
    exception_code,
    uniqExactState(event_id) AS messages
FROM exchange_events
GROUP BY day, network, requester_org, responder_org, role, status, exception_code;

-- Daily outcome counts and time-to-fulfil states. An outcome changes class
-- from one version to the next (unanswered, then fulfilled_late), and an
-- insert-time state cannot take back what an earlier version added, so this
-- rollup is not fed at insert time: it is rebuilt one month at a time from
-- the deduplicated `outcomes` view (chstore.RebuildRollups, which the writer
-- runs for the months it wrote) and swapped in whole with REPLACE PARTITION.
-- Every figure in it is therefore exact as of its rebuilt_at. The key stops
-- at the responder (no requester): rebuilding costs a GROUP BY over the
-- month, and every key column multiplies the groups.
CREATE TABLE IF NOT EXISTS outcomes_daily (
    day             Date,
    network         String,
    responder_org   String,
    request_kind    String,
    outcome         String,
    exception_code  String,
    requests        AggregateFunction(count),
    very_late       AggregateFunction(sum, UInt64),
    answered        AggregateFunction(sum, UInt64),
    within_sla      AggregateFunction(sum, UInt64),
    sla_min         AggregateFunction(min, UInt64),
    sla_max         AggregateFunction(max, UInt64),
    ttf             AggregateFunction(quantilesExact(0.5, 0.9, 0.99), UInt64),
    rebuilt_at      AggregateFunction(max, DateTime('UTC'))
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (network, day, responder_org, request_kind, outcome, exception_code);

-- Backfill of the insert-time tables for a database that already held data
-- when this migration ran. A row written meanwhile by the writer is counted
-- by its materialized view too: the lookups collapse it and uniqExact
-- ignores it, so this is safe with writers running.
INSERT INTO outcomes_by_request (request_id, network, outcome_id, version, requested_at)
SELECT request_id, network, outcome_id, version, requested_at FROM exchange_outcomes;

INSERT INTO outcomes_by_patient (patient_token, network, outcome_id, version, requested_at)
SELECT patient_token, network, outcome_id, version, requested_at FROM exchange_outcomes WHERE patient_token != '';

INSERT INTO events_by_message (message_id, network, event_time, event_id)
SELECT message_id, network, event_time, event_id FROM exchange_events;

INSERT INTO events_daily (day, network, requester_org, responder_org, role, status, exception_code, messages)
SELECT toDate(event_time) AS day, network, requester_org, responder_org, role, status, exception_code, uniqExactState(event_id)
FROM exchange_events
GROUP BY day, network, requester_org, responder_org, role, status, exception_code;
