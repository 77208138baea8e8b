-- Data-quality flags (issue 24): an observer records every message it can
-- identify, and a defect that does not prevent identifying it (an
-- unreadable or empty event time, an HL7 timestamp without its decimal
-- point, an empty MSH-10 or MSH-9, a FHIR entry status that is no HTTP
-- status line, a SOAP copy without its WS-Addressing ids) is a flag on the
-- event, not a rejection. The mappings put each flag in reason_codes as
-- "dq|<flag>" (lib/domain/quality lists them); dq_flags holds the flags
-- alone, without the prefix, so that analysts count them simply:
--   countIf(has(dq_flags, 'bad-timestamp')), countIf(notEmpty(dq_flags)).
--
-- The column is computed from reason_codes by its DEFAULT, and no writer
-- names it: rows stored before this migration (SOAP copies were flagged
-- already) read their flags too, a writer that predates it keeps working,
-- and the rule lives in one place.
ALTER TABLE exchange_events ADD COLUMN dq_flags Array(String)
    DEFAULT arrayMap(c -> substring(c, 4), arrayFilter(c -> substring(c, 1, 3) = 'dq|', reason_codes));

-- A view keeps the columns it had when it was created (even SELECT *):
-- created again with the column.
DROP TABLE IF EXISTS events;

CREATE VIEW IF NOT EXISTS events AS
SELECT * FROM exchange_events FINAL;
