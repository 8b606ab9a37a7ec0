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
  // The one way back to identity: SECURITY DEFINER (runs with the owner's rights, who alone may
  // read the vault), executable by vault_steward only, auditing the caller (session_user: inside
  // the function current_user is the owner) in the caller's transaction, found or not.
  vault_reidentify: `CREATE TABLE IF NOT EXISTS {{rel vaultSchema "reidentification_audit"}} (
  actor name NOT NULL, at timestamptz NOT NULL DEFAULT now(), reason text NOT NULL, token text NOT NULL, records_found integer NOT NULL
);
CREATE TABLE IF NOT EXISTS {{rel vaultSchema "reidentification_audit_changes"}} (
  changed_by name NOT NULL, at timestamptz NOT NULL DEFAULT now(), operation text NOT NULL, old_row jsonb
);
REVOKE ALL ON {{rel vaultSchema "reidentification_audit"}}, {{rel vaultSchema "reidentification_audit_changes"}} FROM PUBLIC;
GRANT SELECT ON {{rel vaultSchema "reidentification_audit"}} TO {{ident vaultSteward}};
-- Append-only: only the owner holds UPDATE/DELETE, and whatever it changes is recorded.
CREATE OR REPLACE FUNCTION {{rel vaultSchema "record_audit_change"}}() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  INSERT INTO {{rel vaultSchema "reidentification_audit_changes"}} (changed_by, operation, old_row) VALUES (session_user, TG_OP, to_jsonb(OLD));
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $fn$;
DROP TRIGGER IF EXISTS tsform_audit_changes ON {{rel vaultSchema "reidentification_audit"}};
CREATE TRIGGER tsform_audit_changes BEFORE UPDATE OR DELETE ON {{rel vaultSchema "reidentification_audit"}}
  FOR EACH ROW EXECUTE FUNCTION {{rel vaultSchema "record_audit_change"}}();
CREATE OR REPLACE FUNCTION {{rel vaultSchema "reidentify"}}(p_token text, p_reason text)
  RETURNS TABLE (practice_id varchar, patient_id varchar, audited_as name)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE n integer;
BEGIN
  IF length(coalesce(p_reason, '')) < 8 THEN
    RAISE EXCEPTION 'a re-identification needs a reason of at least 8 characters';
  END IF;
  SELECT count(*) INTO n FROM {{rel vaultSchema "person_tokens"}} t WHERE t.person_token = p_token;
  INSERT INTO {{rel vaultSchema "reidentification_audit"}} (actor, reason, token, records_found) VALUES (session_user, p_reason, p_token, n);
  IF n = 0 THEN
    RETURN QUERY SELECT NULL::varchar, NULL::varchar, session_user;
  ELSE
    RETURN QUERY SELECT t.{{ident tenantColumn}}::varchar, t.patient_id::varchar, session_user FROM {{rel vaultSchema "person_tokens"}} t WHERE t.person_token = p_token;
  END IF;
END $fn$;
REVOKE ALL ON FUNCTION {{rel vaultSchema "reidentify"}}(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {{rel vaultSchema "reidentify"}}(text, text) TO {{ident vaultSteward}};
`,
};

export type TemplateName = 'security_bootstrap' | 'protect_table' | 'protect_view' | 'schema_grants' | 'vault_reidentify';
