-- Time to acknowledge in the daily rollup, so monthly scorecards need not
-- read the deduplicated outcomes view for it: acknowledged counts requests
-- with a first answer, tta keeps their times to acknowledge (exact
-- quantiles of any set of days, like ttf). Months rolled up before this
-- migration get them at their next rebuild (chwriter rebuilds stale months;
-- chstore.RebuildRollups rebuilds any). ClickHouse 18.16 has no ADD COLUMN
-- IF NOT EXISTS: the migration runner takes "column already exists" as done
-- when two processes migrate at once.
ALTER TABLE outcomes_daily ADD COLUMN acknowledged AggregateFunction(sum, UInt64);
ALTER TABLE outcomes_daily ADD COLUMN tta AggregateFunction(quantilesExact(0.5, 0.9, 0.99), UInt64);
