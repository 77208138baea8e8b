-- Core tables: one row per observed message, one row per outcome version, the
-- steps of each chain. Runs on ClickHouse 18.16 and current releases: no
-- DateTime64, LowCardinality, TTL or codecs.

-- One row per observed message. Re-sent copies have the same event_id and
-- collapse on merge; the `events` view below always shows them once.
CREATE TABLE IF NOT EXISTS exchange_events (
    event_id        UUID,
    network         String,
    format          String,
    message_id      String,
    message_type    String,
    role            String,
    request_kind    String,
    correlation_key String,
    in_reply_to     String,
    requester_org   String,
    responder_org   String,
    event_time      DateTime('UTC'),
    event_time_ms   Int64,
    ingest_time     DateTime('UTC'),
    status          String,
    ack_code        String,
    reason_codes    Array(String),
    reason_text     String,
    exception_code  String,
    patient_token   String,
    patient_key_id  String,
    record_count    UInt32,
    raw_subject     String,
    raw_seq         UInt64,
    partition       UInt16,
    mapping_version String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (network, event_time, event_id);

-- One row per version of an outcome: a late answer re-issues the same
-- outcome_id with a higher version; the `outcomes` view keeps the highest.
CREATE TABLE IF NOT EXISTS exchange_outcomes (
    outcome_id         UUID,
    version            UInt64,
    network            String,
    request_id         String,
    correlation_key    String,
    request_kind       String,
    requester_org      String,
    responder_org      String,
    outcome            String,
    exception_code     String,
    reason_codes       Array(String),
    patient_token      String,
    requested_at       DateTime('UTC'),
    requested_at_ms    Int64,
    acknowledged_at_ms Int64,
    answered_at_ms     Int64,
    tta_ms             Nullable(UInt64),
    ttf_ms             Nullable(UInt64),
    sla_ms             UInt64,
    grace_ms           UInt64,
    decided_at_ms      Int64,
    rule_version       String,
    mapping_version    String,
    response_id        String,
    record_count       UInt32,
    step_count         UInt32
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (network, outcome_id);

-- The messages of each chain, as of the outcome version that listed them.
CREATE TABLE IF NOT EXISTS outcome_steps (
    outcome_id    UUID,
    version       UInt64,
    network       String,
    event_id      UUID,
    message_id    String,
    message_type  String,
    role          String,
    status        String,
    event_time    DateTime('UTC'),
    event_time_ms Int64,
    raw_seq       UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (outcome_id, event_id);

-- The deduplicated truth: one row per observed message.
CREATE VIEW IF NOT EXISTS events AS
SELECT * FROM exchange_events FINAL;

-- The deduplicated truth: one row per linked request, its latest version.
CREATE VIEW IF NOT EXISTS outcomes AS
SELECT
    outcome_id,
    version,
    network,
    request_id,
    correlation_key,
    request_kind,
    requester_org,
    responder_org,
    outcome,
    exception_code,
    reason_codes,
    patient_token,
    requested_at,
    requested_at_ms,
    acknowledged_at_ms,
    answered_at_ms,
    tta_ms,
    ttf_ms,
    sla_ms,
    grace_ms,
    decided_at_ms,
    rule_version,
    mapping_version,
    response_id,
    record_count,
    step_count
FROM exchange_outcomes FINAL;
