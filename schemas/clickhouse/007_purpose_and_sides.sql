-- Exchange purpose, home communities and gateway sides (issue 22): the
-- columns of the ExchangeEvent and Outcome fields of the same names.
--
-- purpose is the canonical purpose (lib/domain/purpose: treatment,
-- individual_access, ..., unknown). A purpose the message did not carry is
-- written as 'unknown' (the chwriter maps "" to it), and the column's
-- DEFAULT is 'unknown', so rows stored before this migration, or by a
-- writer that predates it, read 'unknown' too: no reader has to map "".
-- purpose_code ("system|code" as sent, "" when none) tells a purpose not
-- sent from a code the table does not know.
--
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner
-- takes "column already exists" as done when two processes migrate at once,
-- so each column has a statement of its own.
ALTER TABLE exchange_events ADD COLUMN purpose String DEFAULT 'unknown';
ALTER TABLE exchange_events ADD COLUMN purpose_code String;
ALTER TABLE exchange_events ADD COLUMN requester_community String;
ALTER TABLE exchange_events ADD COLUMN responder_community String;
ALTER TABLE exchange_events ADD COLUMN side String;
ALTER TABLE exchange_events ADD COLUMN transaction_id String;
ALTER TABLE exchange_events ADD COLUMN untimed UInt8;

ALTER TABLE exchange_outcomes ADD COLUMN purpose String DEFAULT 'unknown';
ALTER TABLE exchange_outcomes ADD COLUMN purpose_code String;
ALTER TABLE exchange_outcomes ADD COLUMN requester_community String;
ALTER TABLE exchange_outcomes ADD COLUMN responder_community String;
ALTER TABLE exchange_outcomes ADD COLUMN sides String;
ALTER TABLE exchange_outcomes ADD COLUMN sla_business_days UInt32;
ALTER TABLE exchange_outcomes ADD COLUMN untimed UInt8;

ALTER TABLE outcome_steps ADD COLUMN side String;

ALTER TABLE patient_journeys ADD COLUMN purpose String DEFAULT 'unknown';
ALTER TABLE patient_journeys ADD COLUMN purpose_code String;
ALTER TABLE patient_journeys ADD COLUMN requester_community String;
ALTER TABLE patient_journeys ADD COLUMN responder_community String;
ALTER TABLE patient_journeys ADD COLUMN sides String;
ALTER TABLE patient_journeys ADD COLUMN sla_business_days UInt32;
ALTER TABLE patient_journeys ADD COLUMN untimed UInt8;

-- The rollup's rates by purpose: purpose joins the end of the sorting key,
-- the one change of a sorting key 18.16 allows (a column added by the same
-- ALTER). Every reader that groups without purpose still gets the same
-- sums. A column added to a sorting key may have no DEFAULT: months rolled
-- up before this migration hold '' until their next rebuild, which writes
-- rollup_format 3 (chstore.RollupFormat); a reader of the purpose reads a
-- month below 3 from the outcomes view. (DECISIONS.md, 2026-12-07.)
ALTER TABLE outcomes_daily ADD COLUMN purpose String, MODIFY ORDER BY (network, day, responder_org, request_kind, outcome, exception_code, purpose);

-- A view keeps the columns it had when it was created (even SELECT *), so
-- the views that list columns are created again. 18.16 has no DROP VIEW.
DROP TABLE IF EXISTS events;

CREATE VIEW IF NOT EXISTS events AS
SELECT * FROM exchange_events FINAL;

DROP TABLE IF EXISTS outcomes;

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
    step_count,
    purpose,
    purpose_code,
    requester_community,
    responder_community,
    sides,
    sla_business_days,
    untimed
FROM exchange_outcomes FINAL;

-- patient_journeys_mv lists its columns: created again with the new ones.
DROP TABLE IF EXISTS patient_journeys_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS patient_journeys_mv TO patient_journeys AS
SELECT patient_token, network, outcome_id, version, request_id, correlation_key, request_kind, requester_org, responder_org,
    outcome, exception_code, reason_codes, requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms,
    sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count,
    purpose, purpose_code, requester_community, responder_community, sides, sla_business_days, untimed
FROM exchange_outcomes
WHERE patient_token != '';

-- An outcome another process wrote between the DROP and the CREATE above
-- reached no materialized view: copy every outcome naming a patient again.
-- The copies of rows already there are the same rows (same key, same
-- version) and collapse on merge; the journey reader keeps one meanwhile.
INSERT INTO patient_journeys (patient_token, network, outcome_id, version, request_id, correlation_key, request_kind,
    requester_org, responder_org, outcome, exception_code, reason_codes, requested_at, requested_at_ms, acknowledged_at_ms,
    answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version, response_id, record_count,
    step_count, purpose, purpose_code, requester_community, responder_community, sides, sla_business_days, untimed)
SELECT patient_token, network, outcome_id, version, request_id, correlation_key, request_kind, requester_org, responder_org,
    outcome, exception_code, reason_codes, requested_at, requested_at_ms, acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms,
    sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version, response_id, record_count, step_count,
    purpose, purpose_code, requester_community, responder_community, sides, sla_business_days, untimed
FROM exchange_outcomes
WHERE patient_token != '';
