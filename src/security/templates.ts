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
GRANT USAGE ON SCHEMA {{ident securitySchema}} TO {{ident practices}};
GRANT SELECT ON {{rel securitySchema membersTable}} TO {{ident practices}};
`,
  // ENABLE + FORCE: the owner is filtered too, and sees everything only through its own policy.
  // The predicate is a sub-select wrapped in ARRAY(...): evaluated once per query, not per row,
  // and keyed on current_user, which a session cannot change by SET (unlike a GUC).
  protect_table: `ALTER TABLE {{rel schema name}} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{rel schema name}} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tsform_practice_isolation ON {{rel schema name}};
CREATE POLICY tsform_practice_isolation ON {{rel schema name}} AS PERMISSIVE FOR ALL TO PUBLIC
  USING ({{ident tenantColumn}} = ANY (ARRAY(SELECT m.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m.role_name = current_user)))
  WITH CHECK ({{ident tenantColumn}} = ANY (ARRAY(SELECT m.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m.role_name = current_user)));
DROP POLICY IF EXISTS tsform_owner ON {{rel schema name}};
CREATE POLICY tsform_owner ON {{rel schema name}} AS PERMISSIVE FOR ALL TO {{ident owner}} USING (true) WITH CHECK (true);
CREATE INDEX IF NOT EXISTS {{ident indexName}} ON {{rel schema name}} ({{ident tenantColumn}});
{{#if readable}}GRANT SELECT ON {{rel schema name}} TO {{ident practices}};
{{/if}}`,
  // Views run with their owner's rights unless security_invoker: without it a view would read
  // every practice's rows through the owner's policy.
  protect_view: `ALTER VIEW {{rel schema name}} SET (security_invoker = true);
{{#if readable}}GRANT SELECT ON {{rel schema name}} TO {{ident practices}};
{{/if}}`,
  schema_grants: `{{#each practiceSchemas}}CREATE SCHEMA IF NOT EXISTS {{ident this}};
GRANT USAGE ON SCHEMA {{ident this}} TO {{ident ../practices}};
{{/each}}{{#each researchSchemas}}CREATE SCHEMA IF NOT EXISTS {{ident this}};
GRANT USAGE ON SCHEMA {{ident this}} TO {{ident ../researchReader}};
GRANT SELECT ON ALL TABLES IN SCHEMA {{ident this}} TO {{ident ../researchReader}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{ident ../owner}} IN SCHEMA {{ident this}} GRANT SELECT ON TABLES TO {{ident ../researchReader}};
{{/each}}CREATE SCHEMA IF NOT EXISTS {{ident vaultSchema}};
REVOKE ALL ON SCHEMA {{ident vaultSchema}} FROM PUBLIC;
GRANT USAGE ON SCHEMA {{ident vaultSchema}} TO {{ident vaultSteward}};
`,
};

export type TemplateName = 'security_bootstrap' | 'protect_table' | 'protect_view' | 'schema_grants';
