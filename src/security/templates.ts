/**
 * Built-in DDL templates (Handlebars). A project overrides one by putting `policies/<name>.hbs`
 * next to policies.yml. Identifiers only ever reach SQL through `{{ident}}`/`{{rel}}`; no
 * template receives a practice id or any other value: those are bound parameters.
 */
export const DEFAULT_TEMPLATES: Record<string, string> = {
  // The membership table is itself protected: a practice role sees only its own rows,
  // otherwise every practice could read the whole role-to-practice map (notes/postgres-rls.md).
  security_bootstrap: `CREATE SCHEMA IF NOT EXISTS {{ident securitySchema}};
REVOKE ALL ON SCHEMA {{ident securitySchema}} FROM PUBLIC;
CREATE TABLE IF NOT EXISTS {{rel securitySchema membersTable}} (
  role_name name NOT NULL,
  {{ident tenantColumn}} varchar NOT NULL,
  PRIMARY KEY (role_name, {{ident tenantColumn}})
);
ALTER TABLE {{rel securitySchema membersTable}} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{rel securitySchema membersTable}} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tsform_own_membership ON {{rel securitySchema membersTable}};
CREATE POLICY tsform_own_membership ON {{rel securitySchema membersTable}} FOR SELECT TO PUBLIC USING (role_name = current_user);
DROP POLICY IF EXISTS tsform_owner ON {{rel securitySchema membersTable}};
CREATE POLICY tsform_owner ON {{rel securitySchema membersTable}} FOR ALL TO {{ident owner}} USING (true) WITH CHECK (true);
GRANT USAGE ON SCHEMA {{ident securitySchema}} TO {{ident practices}}, {{ident practiceGroups}};
GRANT SELECT ON {{rel securitySchema membersTable}} TO {{ident practices}}, {{ident practiceGroups}};
`,
  // ENABLE + FORCE: the owner is filtered too, and sees everything only through its own policy.
  // Both predicates are sub-selects keyed on current_user, which a session cannot change by SET
  // (unlike a GUC), evaluated once per query (an InitPlan), not per row. One-practice roles
  // compare with a scalar: an equality with a parameter, as cheap as an explicit filter
  // (bench/rls.ts). Multi-practice roles compare with an array, ~50 µs more per query; a role
  // in both groups fails closed (the scalar sub-select errors on its second practice).
  // Policies TO a group apply to its members only: any other role sees no row at all.
  protect_table: `ALTER TABLE {{rel schema name}} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{rel schema name}} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tsform_practice_isolation ON {{rel schema name}};
CREATE POLICY tsform_practice_isolation ON {{rel schema name}} AS PERMISSIVE FOR ALL TO {{ident practices}}
  USING ({{ident tenantColumn}} = (SELECT m.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m.role_name = current_user))
  WITH CHECK ({{ident tenantColumn}} = (SELECT m.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m.role_name = current_user));
DROP POLICY IF EXISTS tsform_group_isolation ON {{rel schema name}};
CREATE POLICY tsform_group_isolation ON {{rel schema name}} AS PERMISSIVE FOR ALL TO {{ident practiceGroups}}
  USING ({{ident tenantColumn}} = ANY (ARRAY(SELECT m.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m.role_name = current_user)))
  WITH CHECK ({{ident tenantColumn}} = ANY (ARRAY(SELECT m.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m.role_name = current_user)));
DROP POLICY IF EXISTS tsform_owner ON {{rel schema name}};
CREATE POLICY tsform_owner ON {{rel schema name}} AS PERMISSIVE FOR ALL TO {{ident owner}} USING (true) WITH CHECK (true);
CREATE INDEX IF NOT EXISTS {{ident indexName}} ON {{rel schema name}} ({{ident tenantColumn}});
{{#if readable}}GRANT SELECT ON {{rel schema name}} TO {{ident practices}}, {{ident practiceGroups}};
{{/if}}`,
  // Views run with their owner's rights unless security_invoker: without it a view would read
  // every practice's rows through the owner's policy.
  protect_view: `ALTER VIEW {{rel schema name}} SET (security_invoker = true);
{{#if readable}}GRANT SELECT ON {{rel schema name}} TO {{ident practices}}, {{ident practiceGroups}};
{{/if}}`,
  schema_grants: `{{#each practiceSchemas}}CREATE SCHEMA IF NOT EXISTS {{ident this}};
GRANT USAGE ON SCHEMA {{ident this}} TO {{ident ../practices}}, {{ident ../practiceGroups}};
{{/each}}{{#each researchSchemas}}CREATE SCHEMA IF NOT EXISTS {{ident this}};
GRANT USAGE ON SCHEMA {{ident this}} TO {{ident ../researchReader}};
GRANT SELECT ON ALL TABLES IN SCHEMA {{ident this}} TO {{ident ../researchReader}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{ident ../owner}} IN SCHEMA {{ident this}} GRANT SELECT ON TABLES TO {{ident ../researchReader}};
{{/each}}CREATE SCHEMA IF NOT EXISTS {{ident vaultSchema}};
REVOKE ALL ON SCHEMA {{ident vaultSchema}} FROM PUBLIC;
GRANT USAGE ON SCHEMA {{ident vaultSchema}} TO {{ident vaultSteward}};
`,
  // The one way back to identity, in two steps so that the audit cannot be rolled back:
  // request_reidentification writes the audit row (who, when, why, which token, records found)
  // and returns its ticket; reidentify(ticket) returns the records only when that row was
  // committed by an earlier transaction (pg_xact_status of the xid stored with it): a caller's
  // ROLLBACK or ROLLBACK TO SAVEPOINT can undo a request, but then no identity was returned.
  // A ticket serves its own requester (session_user: inside these SECURITY DEFINER functions
  // current_user is the owner) once: the lookup is recorded in reidentification_lookups, whose
  // key refuses a second one. A rolled-back lookup leaves its ticket unused; using it again
  // discloses the same records to the same person under the same committed audit row.
  // Both functions run with the owner's rights (who alone may read the vault) and are
  // executable by vault_steward only. The audit tables are append-only: only the owner holds
  // UPDATE/DELETE, and each changed or deleted row is recorded in reidentification_audit_changes;
  // TRUNCATE (which fires no row trigger) is refused by a statement trigger on all three.
  vault_reidentify: `CREATE TABLE IF NOT EXISTS {{rel vaultSchema "reidentification_audit"}} (
  actor name NOT NULL, at timestamptz NOT NULL DEFAULT now(), reason text NOT NULL, token text NOT NULL, records_found integer NOT NULL
);
-- Columns of the two-step path; added to audit tables made before it (older rows have no xid).
ALTER TABLE {{rel vaultSchema "reidentification_audit"}} ADD COLUMN IF NOT EXISTS ticket bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE {{rel vaultSchema "reidentification_audit"}} ADD COLUMN IF NOT EXISTS requested_in xid8;
CREATE UNIQUE INDEX IF NOT EXISTS reidentification_audit_ticket ON {{rel vaultSchema "reidentification_audit"}} (ticket);
CREATE TABLE IF NOT EXISTS {{rel vaultSchema "reidentification_lookups"}} (
  ticket bigint PRIMARY KEY, actor name NOT NULL, at timestamptz NOT NULL DEFAULT now(), records_returned integer NOT NULL
);
CREATE TABLE IF NOT EXISTS {{rel vaultSchema "reidentification_audit_changes"}} (
  changed_by name NOT NULL, at timestamptz NOT NULL DEFAULT now(), operation text NOT NULL, old_row jsonb
);
ALTER TABLE {{rel vaultSchema "reidentification_audit_changes"}} ADD COLUMN IF NOT EXISTS table_name name;
REVOKE ALL ON {{rel vaultSchema "reidentification_audit"}}, {{rel vaultSchema "reidentification_lookups"}}, {{rel vaultSchema "reidentification_audit_changes"}} FROM PUBLIC;
GRANT SELECT ON {{rel vaultSchema "reidentification_audit"}}, {{rel vaultSchema "reidentification_lookups"}} TO {{ident vaultSteward}};
-- Append-only: only the owner holds UPDATE/DELETE, and whatever it changes is recorded.
CREATE OR REPLACE FUNCTION {{rel vaultSchema "record_audit_change"}}() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  INSERT INTO {{rel vaultSchema "reidentification_audit_changes"}} (changed_by, operation, old_row, table_name) VALUES (session_user, TG_OP, to_jsonb(OLD), TG_TABLE_NAME);
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $fn$;
DROP TRIGGER IF EXISTS tsform_audit_changes ON {{rel vaultSchema "reidentification_audit"}};
CREATE TRIGGER tsform_audit_changes BEFORE UPDATE OR DELETE ON {{rel vaultSchema "reidentification_audit"}}
  FOR EACH ROW EXECUTE FUNCTION {{rel vaultSchema "record_audit_change"}}();
DROP TRIGGER IF EXISTS tsform_audit_changes ON {{rel vaultSchema "reidentification_lookups"}};
CREATE TRIGGER tsform_audit_changes BEFORE UPDATE OR DELETE ON {{rel vaultSchema "reidentification_lookups"}}
  FOR EACH ROW EXECUTE FUNCTION {{rel vaultSchema "record_audit_change"}}();
-- a deleted change is itself recorded (as a new row): the trail cannot be emptied row by row
DROP TRIGGER IF EXISTS tsform_audit_changes ON {{rel vaultSchema "reidentification_audit_changes"}};
CREATE TRIGGER tsform_audit_changes BEFORE UPDATE OR DELETE ON {{rel vaultSchema "reidentification_audit_changes"}}
  FOR EACH ROW EXECUTE FUNCTION {{rel vaultSchema "record_audit_change"}}();
-- TRUNCATE is refused rather than recorded: recording it would mean copying the whole audit.
CREATE OR REPLACE FUNCTION {{rel vaultSchema "refuse_audit_truncate"}}() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  RAISE EXCEPTION 'the re-identification audit is append-only: TRUNCATE of % is refused', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $fn$;
DROP TRIGGER IF EXISTS tsform_audit_no_truncate ON {{rel vaultSchema "reidentification_audit"}};
CREATE TRIGGER tsform_audit_no_truncate BEFORE TRUNCATE ON {{rel vaultSchema "reidentification_audit"}}
  FOR EACH STATEMENT EXECUTE FUNCTION {{rel vaultSchema "refuse_audit_truncate"}}();
DROP TRIGGER IF EXISTS tsform_audit_no_truncate ON {{rel vaultSchema "reidentification_lookups"}};
CREATE TRIGGER tsform_audit_no_truncate BEFORE TRUNCATE ON {{rel vaultSchema "reidentification_lookups"}}
  FOR EACH STATEMENT EXECUTE FUNCTION {{rel vaultSchema "refuse_audit_truncate"}}();
DROP TRIGGER IF EXISTS tsform_audit_no_truncate ON {{rel vaultSchema "reidentification_audit_changes"}};
CREATE TRIGGER tsform_audit_no_truncate BEFORE TRUNCATE ON {{rel vaultSchema "reidentification_audit_changes"}}
  FOR EACH STATEMENT EXECUTE FUNCTION {{rel vaultSchema "refuse_audit_truncate"}}();
-- The one-step function audited in the caller's transaction: a ROLLBACK removed the audit row.
DROP FUNCTION IF EXISTS {{rel vaultSchema "reidentify"}}(text, text);
CREATE OR REPLACE FUNCTION {{rel vaultSchema "request_reidentification"}}(p_token text, p_reason text)
  RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE n integer; t bigint;
BEGIN
  IF length(btrim(coalesce(p_reason, ''))) < 8 THEN
    RAISE EXCEPTION 'a re-identification needs a reason of at least 8 characters' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_token IS NULL THEN
    RAISE EXCEPTION 'a re-identification needs a token' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT count(*) INTO n FROM {{rel vaultSchema "person_tokens"}} v WHERE v.person_token = p_token;
  -- audited whether or not the token exists: probing for tokens is itself worth a record
  INSERT INTO {{rel vaultSchema "reidentification_audit"}} (actor, reason, token, records_found, requested_in)
    VALUES (session_user, p_reason, p_token, n, pg_current_xact_id()) RETURNING ticket INTO t;
  RETURN t;
END $fn$;
CREATE OR REPLACE FUNCTION {{rel vaultSchema "reidentify"}}(p_ticket bigint)
  RETURNS TABLE (practice_id varchar, patient_id varchar, audited_as name)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE a record; n integer;
BEGIN
  SELECT r.actor, r.token, r.requested_in INTO a FROM {{rel vaultSchema "reidentification_audit"}} r WHERE r.ticket = p_ticket;
  -- one message for both: a steward learns nothing about another steward's tickets
  IF NOT FOUND THEN
    RAISE EXCEPTION 're-identification ticket % is not a ticket of %', p_ticket, session_user USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF a.actor <> session_user THEN
    RAISE EXCEPTION 're-identification ticket % is not a ticket of %', p_ticket, session_user USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- Visible and committed by an earlier transaction; in the requesting transaction (or one of
  -- its savepoints) the status is 'in progress'. A NULL xid is a row from before tickets.
  IF a.requested_in IS NULL OR pg_xact_status(a.requested_in) IS DISTINCT FROM 'committed' THEN
    RAISE EXCEPTION 're-identification ticket % is not committed yet: request it in a transaction of its own, commit, then look it up', p_ticket
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  SELECT count(*) INTO n FROM {{rel vaultSchema "person_tokens"}} v WHERE v.person_token = a.token;
  BEGIN
    INSERT INTO {{rel vaultSchema "reidentification_lookups"}} (ticket, actor, records_returned) VALUES (p_ticket, session_user, n);
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 're-identification ticket % was used already: request a new one', p_ticket USING ERRCODE = 'object_not_in_prerequisite_state';
  END;
  IF n = 0 THEN
    RETURN QUERY SELECT NULL::varchar, NULL::varchar, session_user;
  ELSE
    RETURN QUERY SELECT v.{{ident tenantColumn}}::varchar, v.patient_id::varchar, session_user FROM {{rel vaultSchema "person_tokens"}} v WHERE v.person_token = a.token;
  END IF;
END $fn$;
REVOKE ALL ON FUNCTION {{rel vaultSchema "request_reidentification"}}(text, text), {{rel vaultSchema "reidentify"}}(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {{rel vaultSchema "request_reidentification"}}(text, text), {{rel vaultSchema "reidentify"}}(bigint) TO {{ident vaultSteward}};
`,
};

export type TemplateName = 'security_bootstrap' | 'protect_table' | 'protect_view' | 'schema_grants' | 'vault_reidentify';
