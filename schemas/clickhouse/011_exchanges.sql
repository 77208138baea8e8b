-- Both sides of a cross-network exchange (issue 25). Where the requester's
-- network and the responder's network both feed hinscore, each forwards
-- its own copy of the request and the answer, and each copy is an outcome
-- of its own network (its events and outcome ids are the network's). One
-- exchange seen by two networks is one exchange (DOMAIN.md): these views
-- match the views of one exchange, count it once, list the exchanges only
-- one side saw and give each network's completeness against its
-- counterparts.
--
-- The exchange key is computed from what every outcome row already
-- carries, identical in both copies because the bytes are: the request
-- kind, the requester and responder identifiers (MSH-4 and MSH-6), the
-- request's message id (MSH-10, a FHIR resource id) and its time to the
-- millisecond (MSH-7), so a control id a sender reuses another day is
-- another exchange. Orphans (answers without a request) have no exchange.
--
-- A party's network is the first network the organisation directory lists
-- for its identifier (its `networks`). Only outcomes whose parties the
-- directory places on two different networks take part: a party the
-- directory does not place makes no crossing (never matched, listed or
-- counted in completeness), and the matching groups the crossing outcomes
-- only, not every outcome (measured on 1 million outcomes, 18.16, 2
-- cores: grouping every outcome took outcomes_once from 0.23 s to 6 s).
CREATE VIEW IF NOT EXISTS exchange_views AS
SELECT outcome_id, network, exchange_key, request_kind, requester_org, responder_org, request_id,
    requested_at, requested_at_ms, outcome, exception_code, requester_network, responder_network
FROM
(
    SELECT outcome_id, network, exchange_key, request_kind, requester_org, responder_org, request_id,
        requested_at, requested_at_ms, outcome, exception_code, requester_network
    FROM
    (
        SELECT outcome_id, network,
            concat(request_kind, '|', requester_org, '|', responder_org, '|', request_id, '|', toString(requested_at_ms)) AS exchange_key,
            request_kind, requester_org, responder_org, request_id, requested_at, requested_at_ms, outcome, exception_code
        FROM exchange_outcomes FINAL
        -- The sets first: an outcome of parties the directory does not
        -- place costs no key and no join. GLOBAL: on the cluster both
        -- tables are Distributed, and ClickHouse refuses a plain IN over a
        -- Distributed table inside a query of one (distributed_product_mode).
        WHERE outcome != 'orphan' AND request_id != ''
            AND requester_org GLOBAL IN (SELECT identifier FROM directory WHERE notEmpty(networks))
            AND responder_org GLOBAL IN (SELECT identifier FROM directory WHERE notEmpty(networks))
    )
    ANY INNER JOIN (SELECT identifier AS requester_org, networks[1] AS requester_network FROM directory WHERE notEmpty(networks)) USING requester_org
)
ANY INNER JOIN (SELECT identifier AS responder_org, networks[1] AS responder_network FROM directory WHERE notEmpty(networks)) USING responder_org
WHERE requester_network != responder_network;

-- The days each network fed hinscore: it has an outcome requested that
-- day (from the table: a copy stored twice names the same day).
CREATE VIEW IF NOT EXISTS network_days AS
SELECT network, toDate(requested_at) AS day
FROM exchange_outcomes
GROUP BY network, day;

-- One row per cross-network exchange. counted_network is the copy that
-- counts: the responder's network's when its feed carried the exchange
-- (its gateway answered, so its copy is the answer as given), else the
-- requester's network's, else the first network by name. seen_by: 'both',
-- 'responder' or 'requester' (whose network's feed alone carried it),
-- 'neither' (only networks of neither party). copies: every copy's
-- (outcome_id, network).
CREATE VIEW IF NOT EXISTS exchanges AS
SELECT exchange_key, x_kind AS request_kind, x_requester AS requester_org, x_responder AS responder_org,
    x_request_id AS request_id, x_requested_at AS requested_at, x_requested_at_ms AS requested_at_ms,
    x_requester_network AS requester_network, x_responder_network AS responder_network, networks, copies,
    counted_network, counted_outcome_id AS outcome_id, counted_outcome AS outcome, counted_exception AS exception_code,
    multiIf(has(networks, x_requester_network) AND has(networks, x_responder_network), 'both',
        has(networks, x_responder_network), 'responder',
        has(networks, x_requester_network), 'requester', 'neither') AS seen_by
FROM
(
    -- Aliases differ from the columns: an alias named as a column would
    -- replace that column inside the other aggregates.
    SELECT exchange_key,
        any(request_kind) AS x_kind, any(requester_org) AS x_requester, any(responder_org) AS x_responder,
        any(request_id) AS x_request_id, any(requested_at) AS x_requested_at, any(requested_at_ms) AS x_requested_at_ms,
        any(requester_network) AS x_requester_network, any(responder_network) AS x_responder_network,
        arraySort(groupUniqArray(network)) AS networks,
        groupArray((outcome_id, network)) AS copies,
        argMin(network, concat(if(network = responder_network, '0', if(network = requester_network, '1', '2')), network)) AS counted_network,
        argMin(outcome_id, concat(if(network = responder_network, '0', if(network = requester_network, '1', '2')), network)) AS counted_outcome_id,
        argMin(outcome, concat(if(network = responder_network, '0', if(network = requester_network, '1', '2')), network)) AS counted_outcome,
        argMin(exception_code, concat(if(network = responder_network, '0', if(network = requester_network, '1', '2')), network)) AS counted_exception
    FROM exchange_views
    GROUP BY exchange_key
);

-- Cross-network exchanges that one side's feed did not carry, on days the
-- missing network fed hinscore: a network that sent nothing at all that
-- day is silent, not selective.
CREATE VIEW IF NOT EXISTS exchanges_one_sided AS
SELECT exchange_key, outcome_id, counted_network AS seen_network, missing_network, seen_by, request_kind,
    requester_org, responder_org, requester_network, responder_network, request_id, requested_at, requested_at_ms,
    outcome, exception_code
FROM
(
    SELECT exchange_key, outcome_id, counted_network, if(seen_by = 'requester', responder_network, requester_network) AS missing_network,
        seen_by, request_kind, requester_org, responder_org, requester_network, responder_network, request_id,
        requested_at, requested_at_ms, toDate(requested_at) AS day, outcome, exception_code
    FROM exchanges
    WHERE seen_by IN ('requester', 'responder')
)
ANY INNER JOIN (SELECT network AS missing_network, day FROM network_days) USING missing_network, day;

-- Every copy of a cross-network exchange and the network it counts for:
-- '' for a copy another network's copy stands for; the responder's
-- network for an exchange only the requester's network's feed carried, on
-- a day the responder's network fed hinscore (the responder answered it,
-- and a network that leaves its own refusals out of its feed must not look
-- cleaner for it); else its own network.
CREATE VIEW IF NOT EXISTS exchange_copies AS
SELECT outcome_id, network, exchange_key, requested_at,
    multiIf(network != counted_network, '', seen_by = 'requester' AND responder_fed = 1, responder_network, network) AS counts_for
FROM
(
    SELECT copy.1 AS outcome_id, copy.2 AS network, exchange_key, requested_at, toDate(requested_at) AS day,
        counted_network, seen_by, responder_network
    FROM exchanges
    ARRAY JOIN copies AS copy
)
ANY LEFT JOIN (SELECT network AS responder_network, day, toUInt8(1) AS responder_fed FROM network_days) USING responder_network, day;

-- The copies an exchange seen by several networks does not count.
CREATE VIEW IF NOT EXISTS exchange_second_views AS
SELECT outcome_id, network, exchange_key, requested_at
FROM exchange_copies
WHERE counts_for = '';

-- The outcomes view with each exchange once: what scorecards count. An
-- outcome of no crossing is there as it is; of a cross-network exchange,
-- only the copy that counts, under the network it counts for (network;
-- feed_network is the feed that carried it).
CREATE VIEW IF NOT EXISTS outcomes_once AS
SELECT outcome_id, version, if(crossing = 1, counts_for, feed_network) AS network,
    request_id, correlation_key, request_kind, requester_org, responder_org, outcome,
    exception_code, reason_codes, patient_token, requested_at, requested_at_ms, acknowledged_at_ms,
    answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms, rule_version, mapping_version,
    response_id, record_count, step_count, purpose, purpose_code, requester_community,
    responder_community, sides, sla_business_days, untimed,
    feed_network
FROM
(
    SELECT outcome_id, version, network AS feed_network,
        request_id, correlation_key, request_kind, requester_org, responder_org, outcome,
        exception_code, reason_codes, patient_token, requested_at, requested_at_ms,
        acknowledged_at_ms, answered_at_ms, tta_ms, ttf_ms, sla_ms, grace_ms, decided_at_ms,
        rule_version, mapping_version, response_id, record_count, step_count, purpose, purpose_code,
        requester_community, responder_community, sides, sla_business_days, untimed
    FROM outcomes
)
ANY LEFT JOIN (SELECT outcome_id, counts_for, toUInt8(1) AS crossing FROM exchange_copies) USING outcome_id
WHERE crossing = 0 OR counts_for != '';

-- Per network, day, side (the network as the 'requester' or the
-- 'responder' of the exchange) and outcome class (of the counted copy):
-- the cross-network exchanges its counterpart's feed carried (expected)
-- and those its own feed carried too (seen), on days it fed hinscore.
-- Completeness is seen / expected; scorecard/4 takes it per side and class.
CREATE VIEW IF NOT EXISTS feed_completeness AS
SELECT network, day, side, outcome, count() AS expected, toUInt64(countIf(has(networks, network))) AS seen
FROM
(
    SELECT networks, outcome, toDate(requested_at) AS day, nv.1 AS network, nv.2 AS counterpart, nv.3 AS side
    FROM exchanges
    ARRAY JOIN [(requester_network, responder_network, 'requester'), (responder_network, requester_network, 'responder')] AS nv
)
ANY INNER JOIN (SELECT network, day FROM network_days) USING network, day
WHERE has(networks, counterpart)
GROUP BY network, day, side, outcome;
