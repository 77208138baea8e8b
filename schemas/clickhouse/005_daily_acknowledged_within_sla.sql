-- The rest of the time to acknowledge in the daily rollup, so the monthly
-- scorecards read it from outcomes_daily alone instead of scanning the
-- deduplicated outcomes view (seconds over 10 million outcomes on 18.16):
-- acknowledged_within_sla counts the acknowledged requests whose time to
-- acknowledge is within their SLA (tta_ms <= sla_ms).
--
-- rollup_format records what the rebuild of a month filled in
-- (maxMerge(rollup_format), the same for every row of the month, which is
-- swapped in whole): 0 for a month rolled up before this migration, or by a
-- program that predates it; 2 when acknowledged, tta and
-- acknowledged_within_sla are filled in (chstore.RollupFormat). A reader of
-- the time to acknowledge asks the view about a month below 2; chwriter
-- brings a month up at its next rebuild, chstore.RebuildRollups any month on
-- demand.
ALTER TABLE outcomes_daily ADD COLUMN acknowledged_within_sla AggregateFunction(sum, UInt64);
ALTER TABLE outcomes_daily ADD COLUMN rollup_format AggregateFunction(max, UInt32);
