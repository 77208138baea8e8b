-- Feed health (issue 25): which feed connection carried each message, and
-- the sender's own sequence number where it keeps one (HL7 v2 MSH-13, the
-- syslog meta sequenceId of an ATNA sender). A gap in one source's numbers,
-- or a feed silent in hours its own history says are busy, is a sign that
-- the network's feed is incomplete: a feed-health figure, never a reason
-- to refuse a message. Rows stored before this migration have no feed and
-- no source; they count as received and carry no sequence.
ALTER TABLE exchange_events ADD COLUMN feed String DEFAULT '';

ALTER TABLE exchange_events ADD COLUMN sequence_source String DEFAULT '';

ALTER TABLE exchange_events ADD COLUMN sequence_number Int64 DEFAULT 0;

-- A view keeps the columns it had when it was created: created again.
DROP TABLE IF EXISTS events;

CREATE VIEW IF NOT EXISTS events AS
SELECT * FROM exchange_events FINAL;

-- The views below read exchange_events FINAL (what the events view is)
-- rather than the view, which a concurrent run of this migration may have
-- just dropped.

-- Messages per network, feed and hour: the pattern silence is measured
-- against (the scorecard compares an hour with the same hour of the week
-- in the weeks before; services/scorecard/feedhealth.go states the rule).
CREATE VIEW IF NOT EXISTS feed_hours AS
SELECT
    network,
    feed,
    toStartOfHour(event_time) AS hour,
    toDayOfWeek(event_time) AS day_of_week,
    toHour(event_time) AS hour_of_day,
    count() AS messages,
    countIf(role = 'request') AS requests,
    countIf(role = 'response') AS answers
FROM exchange_events FINAL
GROUP BY network, feed, hour, day_of_week, hour_of_day;

-- One row per network, feed, sequence source and day: the numbers seen and
-- what they say is missing. gaps counts the numbers skipped between
-- consecutive numbers seen at most 1000 apart; a larger jump, forward or
-- (once sorted) a restart of the numbering, is counted in restarts, not as
-- missing messages. duplicates are distinct messages that carried a number
-- already seen (a re-sent copy of the same message is one event and does
-- not count). Gaps across midnight appear in the scorecard's periods, not
-- here.
CREATE VIEW IF NOT EXISTS feed_sequences AS
SELECT
    network,
    feed,
    sequence_source,
    day,
    messages,
    numbers,
    first_number,
    last_number,
    arraySum(arrayMap(d -> if(d > 1 AND d <= 1000, d - 1, 0), arrayDifference(sorted))) AS gaps,
    arraySum(arrayMap(d -> if(d > 1000, 1, 0), arrayDifference(sorted))) AS restarts,
    messages - numbers AS duplicates
FROM
(
    SELECT
        network,
        feed,
        sequence_source,
        toDate(event_time) AS day,
        count() AS messages,
        uniqExact(sequence_number) AS numbers,
        min(sequence_number) AS first_number,
        max(sequence_number) AS last_number,
        arraySort(groupUniqArray(sequence_number)) AS sorted
    FROM exchange_events FINAL
    WHERE sequence_source != ''
    GROUP BY network, feed, sequence_source, day
);
