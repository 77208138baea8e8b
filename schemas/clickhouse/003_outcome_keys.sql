-- Investigators open a chain by its outcome id. exchange_outcomes is ordered
-- by (network, outcome_id) and partitioned by month of requested_at, so an id
-- alone would be looked for in every monthly part. outcomes_by_id gives the
-- network and the request time of an id from one granule; the chain is then
-- read with its whole key in its one partition.
CREATE TABLE IF NOT EXISTS outcomes_by_id (
    outcome_id   UUID,
    network      String,
    requested_at DateTime('UTC'),
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY outcome_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS outcomes_by_id_mv TO outcomes_by_id AS
SELECT outcome_id, network, requested_at, version
FROM exchange_outcomes;

-- The outcomes stored before this migration.
INSERT INTO outcomes_by_id (outcome_id, network, requested_at, version)
SELECT outcome_id, network, requested_at, version FROM exchange_outcomes;
