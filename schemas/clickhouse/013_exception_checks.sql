-- Cited exceptions checked against behaviour (issue 25): the rules, as
-- data, and what each rule found for each chain that cited an exception.
--
-- exception_rules mirrors lib/domain/exceptionrule, one row per rule and
-- version, so analysts can join a chain's flag to the rule that raised it
-- and read its reasoning. A new version of the rules is a new migration
-- that inserts its rows; earlier versions stay, since flags stored under
-- them name them. The scorecard's tests compare this table with the Go
-- table of the current version, field by field.
CREATE TABLE IF NOT EXISTS exception_rules (
    rule_id        String,
    rule_version   String,
    codes          Array(String),
    condition      String,
    window         String,
    window_ms      Int64,
    business_days  UInt32,
    threshold      Float64,
    margin         Float64,
    min_others     UInt32,
    reasoning      String
) ENGINE = ReplacingMergeTree()
ORDER BY (rule_id, rule_version);

-- One INSERT ... SELECT per rule: the native protocol takes VALUES as a
-- data block sent after the query, which a migration does not send.
INSERT INTO exception_rules (rule_id, rule_version, codes, condition, window, window_ms, business_days, threshold, margin, min_others, reasoning)
SELECT '171.202-unequal', 'exception-rules/1', ['171.202'], 'citation_rate_above_other_requesters', 'calendar month (UTC) of the request', 0, 0, 3.29, 0.05, 30, 'The privacy exception requires a consistent, non-discriminatory practice: this requester met 171.202 far more often than the other requesters of the same responder, for the same request kind and purpose in the same month (two-proportion z >= 3.29, two-sided p < 0.001, and at least 5 points apart).';

INSERT INTO exception_rules (rule_id, rule_version, codes, condition, window, window_ms, business_days, threshold, margin, min_others, reasoning)
SELECT '171.203-unequal', 'exception-rules/1', ['171.203'], 'citation_rate_above_other_requesters', 'calendar month (UTC) of the request', 0, 0, 3.29, 0.05, 30, 'The security exception requires a consistent, non-discriminatory practice: this requester met 171.203 far more often than the other requesters of the same responder, for the same request kind and purpose in the same month (two-proportion z >= 3.29, two-sided p < 0.001, and at least 5 points apart).';

INSERT INTO exception_rules (rule_id, rule_version, codes, condition, window, window_ms, business_days, threshold, margin, min_others, reasoning)
SELECT '171.204-written-answer', 'exception-rules/1', ['171.204'], 'no_written_answer_within_business_days', '10 US federal business days after the request', 0, 10, 0, 0, 0, '45 CFR 171.204(b) asks for the infeasibility answer in writing within ten business days of the request: the answer citing 171.204 (the written response) came later, or not at all.';

INSERT INTO exception_rules (rule_id, rule_version, codes, condition, window, window_ms, business_days, threshold, margin, min_others, reasoning)
SELECT '171.205-serving', 'exception-rules/1', ['171.205'], 'others_fulfilled_share_at_least', '5 minutes either side of the request', 300000, 0, 0.5, 0, 5, 'The health IT performance exception covers a system that cannot answer (maintenance, overload): the same responder fulfilled at least half of its other requests in the same minutes, so it was answering.';

INSERT INTO exception_rules (rule_id, rule_version, codes, condition, window, window_ms, business_days, threshold, margin, min_others, reasoning)
SELECT '171.301-electronic', 'exception-rules/1', ['171.301', 'redirect-fax', 'redirect-portal'], 'others_fulfilled_electronically_share_at_least', 'calendar month (UTC) of the request', 0, 0, 0.5, 0, 30, 'The manner exception allows another manner only when the requested one cannot be met: the request came in a standard electronic form (HL7 v2, FHIR, IHE XCPD/XCA) and the responder fulfilled at least half of the other requesters\' requests of that kind electronically in the same month, yet sent this one to fax or a portal.';

-- One row per chain that cited a checked code and rule: checked = 0 when
-- the rule could not be applied (too few other chains, no time to compare),
-- flagged = 1 when the citation contradicts the responder's behaviour.
-- others / others_fulfilled / measure are what the rule compared (the
-- other chains, those fulfilled, and the share or z statistic), parameters
-- the rule's parameters in words. Written by the scorecard for the months
-- it checks; a run writes its rows again (checked_at_ms the version), so
-- read it through exception_flags (FINAL).
CREATE TABLE IF NOT EXISTS exception_checks (
    outcome_id        UUID,
    network           String,
    responder         String,
    requester_org     String,
    request_kind      String,
    purpose           String,
    exception_code    String,
    rule_id           String,
    rule_version      String,
    requested_at      DateTime('UTC'),
    requested_at_ms   Int64,
    checked           UInt8,
    flagged           UInt8,
    others            UInt64,
    others_fulfilled  UInt64,
    measure           Float64,
    parameters        String,
    checked_at_ms     Int64
) ENGINE = ReplacingMergeTree(checked_at_ms)
PARTITION BY toYYYYMM(requested_at)
ORDER BY (outcome_id, rule_id);

CREATE VIEW IF NOT EXISTS exception_flags AS
SELECT * FROM exception_checks FINAL;
