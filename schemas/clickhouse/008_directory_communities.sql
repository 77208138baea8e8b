-- The organisation directory knows home community ids (issue 22): an IHE
-- cross-community transaction names the responding gateway by its home
-- community id (urn:oid:...), and the directory names the organisation
-- behind it. A community id is a row of organizations like any identifier
-- (so joins on identifier keep working); identifier_kind says which it is:
-- 'identifier' (an HL7 HD namespace, OID, NPI, FHIR Organization
-- identifier: what requester_org / responder_org carry) or 'home_community'
-- (what requester_community / responder_community carry). Rows loaded
-- before this migration are identifiers.
ALTER TABLE organizations ADD COLUMN identifier_kind String DEFAULT 'identifier';

-- The directory view lists its columns: created again with the new one.
DROP TABLE IF EXISTS directory;

CREATE VIEW IF NOT EXISTS directory AS
SELECT identifier, org_id, name, org_type, developer, networks, version, loaded_at, identifier_kind
FROM organizations FINAL;
