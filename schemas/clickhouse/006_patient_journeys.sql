-- Investigators' point lookups in small granules. A lookup wants a handful
-- of rows; the tables of 002 and 003 read 8192 of every column asked for in
-- each part they touch.
--
-- A patient's journey (GET /v1/patients/{token}/journey): through
-- outcomes_by_patient, the outcomes of a token are found in a few granules,
-- but each is then looked for in exchange_outcomes by its (network,
-- outcome_id) key: one 8192-row granule of every column in every part of
-- every month, about a million rows for a patient's ten requests at 10
-- million outcomes (over 100 ms on 18.16). patient_journeys holds every
-- version of every outcome that names a patient, with all its columns,
-- ordered by the token: a journey is a few 256-row granules of each part.
-- Not partitioned: a journey spans months, and every partition would add
-- its parts to each lookup. A version written twice, or superseded by a
-- later one of the same token, collapses on merge (ReplacingMergeTree
-- (version)); until then the reader keeps the highest version of each
-- outcome. A later version under another token (an orphan's answer first,
-- then the request) leaves the old version under the old token: the reader
-- checks each outcome's latest version in outcome_versions.
CREATE TABLE IF NOT EXISTS patient_journeys (
    patient_token      String,
    network            String,
    outcome_id         UUID,
    version            UInt64,
    request_id         String,
    correlation_key    String,
    request_kind       String,
    requester_org      String,
    responder_org      String,
    outcome            String,
    exception_code     String,
    reason_codes       Array(String),
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
ORDER BY (patient_token, network, outcome_id)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS patient_journeys_mv TO patient_journeys AS
SELECT patient_token, network, outcome_id, version, request_id, correlation_key, request_kind, requester_org, responder_org,
    outcome, exception_code, reason_codes, requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms,
    sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count
FROM exchange_outcomes
WHERE patient_token != '';

-- The latest version of each outcome by its id, with the rest of its key
-- (network, requested_at): outcomes_by_id in 256-row granules, which the API
-- reads to open a chain and to check a journey's versions.
CREATE TABLE IF NOT EXISTS outcome_versions (
    outcome_id   UUID,
    network      String,
    requested_at DateTime('UTC'),
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY outcome_id
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS outcome_versions_mv TO outcome_versions AS
SELECT outcome_id, network, requested_at, version
FROM exchange_outcomes;

-- The outcomes stored before this migration. A row written meanwhile by the
-- writer is copied by the materialized views too and collapses with these.
INSERT INTO patient_journeys (patient_token, network, outcome_id, version, request_id, correlation_key, request_kind,
    requester_org, responder_org, outcome, exception_code, reason_codes, requested_at, requested_at_ms, acknowledged_at_ms,
    answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version, response_id, record_count,
    step_count)
SELECT patient_token, network, outcome_id, version, request_id, correlation_key, request_kind, requester_org, responder_org,
    outcome, exception_code, reason_codes, requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms,
    sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count
FROM exchange_outcomes
WHERE patient_token != '';

INSERT INTO outcome_versions (outcome_id, network, requested_at, version)
SELECT outcome_id, network, requested_at, version FROM exchange_outcomes;
