-- Analyst tables carry no free text from messages (issue 23). A reason as
-- a sender worded it (ERR-8, MSA-3, OperationOutcome diagnostics, a Task's
-- statusReason text, a SOAP fault's reason, EventOutcomeDescription) often
-- names the patient or gives a birth date. The classification reads it at
-- mapping time; what it decided stays: reason_codes, exception_code (the
-- cited 171.xxx exception or the redirect kind), status. The words stay
-- only in the sealed original message, which investigators open through
-- the api's audited raw view.
--
-- The column is dropped rather than emptied: its files go from every part
-- at once (an ALTER ... UPDATE mutation rewrites parts in the background),
-- and no writer can fill it again. A writer that still names the column
-- fails its inserts as an outage (retried, not dead-lettered) until it is
-- replaced by one that does not (services/DECISIONS.md, 2026-12-07).
ALTER TABLE exchange_events DROP COLUMN reason_text;

-- A view keeps the columns it had when it was created (even SELECT *):
-- created again without the column.
DROP TABLE IF EXISTS events;

CREATE VIEW IF NOT EXISTS events AS
SELECT * FROM exchange_events FINAL;
