import { describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import type { PolicyConfig } from '../../src/project/types.ts';
import { createPolicyRenderer } from '../../src/security/render-rls.ts';
import { DEFAULT_TEMPLATES } from '../../src/security/templates.ts';
import { demoCopyErrors } from '../support/compile-errors.ts';
import { TEST_SCHEMAS, testPolicyConfig } from '../support/policy-config.ts';

/**
 * policies/<name>.hbs overrides a built-in DDL template, and it arrives by pull request like a
 * model. Before this check an override was run as written: each weakening below compiled and
 * `tsform run` protected every new relation with it. An override may add what can only narrow
 * (restrictive policies, indexes on plain columns, comments) and must keep every built-in
 * statement in order.
 */

const BUILTIN = DEFAULT_TEMPLATES.protect_table!;
const RESTRICTIVE = `DROP POLICY IF EXISTS hide_nothing ON {{rel schema name}};
CREATE POLICY hide_nothing ON {{rel schema name}} AS RESTRICTIVE FOR SELECT TO {{ident practices}} USING ({{ident tenantColumn}} IS NOT NULL);
`;

const WEAKENINGS: Record<string, { template: string; text: string }> = {
  'no FORCE (the owner reads every row, and so does anything it runs)': {
    template: 'protect_table',
    text: BUILTIN.replace('ALTER TABLE {{rel schema name}} FORCE ROW LEVEL SECURITY;\n', ''),
  },
  'row-level security disabled after the built-in': { template: 'protect_table', text: `${BUILTIN}ALTER TABLE {{rel schema name}} DISABLE ROW LEVEL SECURITY;\n` },
  'NO FORCE after the built-in': { template: 'protect_table', text: `${BUILTIN}ALTER TABLE {{rel schema name}} NO FORCE ROW LEVEL SECURITY;\n` },
  'a permissive policy USING (true)': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY open_door ON {{rel schema name}} FOR SELECT TO {{ident practices}} USING (true);\n`,
  },
  'a policy written AS PERMISSIVE explicitly': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY open_door ON {{rel schema name}} AS PERMISSIVE FOR SELECT TO PUBLIC USING (true);\n`,
  },
  'the practice policy dropped again at the end': { template: 'protect_table', text: `${BUILTIN}DROP POLICY IF EXISTS tsform_practice_isolation ON {{rel schema name}};\n` },
  'the practice policy replaced by one USING (true)': {
    template: 'protect_table',
    text: BUILTIN.replace(/USING \({{ident tenantColumn}} = \(SELECT m\.{{ident tenantColumn}} FROM {{rel securitySchema membersTable}} m WHERE m\.role_name = current_user\)\)/, 'USING (true)'),
  },
  'ALTER POLICY widening the practice policy': {
    template: 'protect_table',
    text: `${BUILTIN}ALTER POLICY tsform_practice_isolation ON {{rel schema name}} USING (true);\n`,
  },
  'a GRANT to PUBLIC': { template: 'protect_table', text: `${BUILTIN}GRANT SELECT ON {{rel schema name}} TO PUBLIC;\n` },
  'ownership given away': { template: 'protect_table', text: `${BUILTIN}ALTER TABLE {{rel schema name}} OWNER TO {{ident practices}};\n` },
  'a transaction ended inside the script': { template: 'protect_table', text: `COMMIT;\n${BUILTIN}` },
  'a restrictive policy that calls a function (it may run on rows the role cannot see)': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY peek ON {{rel schema name}} AS RESTRICTIVE FOR SELECT TO {{ident practices}} USING (set_config('x', {{ident tenantColumn}}, false) IS NOT NULL);\n`,
  },
  'a restrictive policy with a sub-select': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY peek ON {{rel schema name}} AS RESTRICTIVE TO {{ident practices}} USING (EXISTS (SELECT 1 FROM pg_sleep(0)));\n`,
  },
  // a domain's CHECK (or a type's input function) runs at the cast, on rows the role may not see
  'a restrictive policy casting to a domain in public': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY peek ON {{rel schema name}} AS RESTRICTIVE TO {{ident practices}} USING ({{ident tenantColumn}}::public.evil_domain IS NOT NULL);\n`,
  },
  'a restrictive policy casting to a type found through search_path': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY peek ON {{rel schema name}} AS RESTRICTIVE TO {{ident practices}} USING (CAST({{ident tenantColumn}} AS evil_domain) IS NOT NULL);\n`,
  },
  'a restrictive policy casting to a type of a quoted "PG_CATALOG"': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY peek ON {{rel schema name}} AS RESTRICTIVE TO {{ident practices}} USING ({{ident tenantColumn}}::"PG_CATALOG".text IS NOT NULL);\n`,
  },
  'an index on an expression': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE INDEX peek_idx ON {{rel schema name}} ((set_config('x', {{ident tenantColumn}}, false)));\n`,
  },
  'a restrictive policy on the membership table': {
    template: 'protect_table',
    text: `${BUILTIN}CREATE POLICY narrow ON {{rel securitySchema membersTable}} AS RESTRICTIVE TO {{ident practices}} USING (true);\n`,
  },
  'a view without security_invoker': { template: 'protect_view', text: 'GRANT SELECT ON {{rel schema name}} TO {{ident practices}};\n' },
  'the membership table readable by everyone': {
    template: 'security_bootstrap',
    text: DEFAULT_TEMPLATES.security_bootstrap!.replace('USING (role_name = current_user)', 'USING (true)'),
  },
  'the vault granted to the practices': {
    template: 'schema_grants',
    text: `${DEFAULT_TEMPLATES.schema_grants!}GRANT USAGE ON SCHEMA {{ident vaultSchema}} TO {{ident practices}};\n`,
  },
  're-identification without its audit row': {
    template: 'vault_reidentify',
    text: DEFAULT_TEMPLATES.vault_reidentify!.replace(/INSERT INTO {{rel vaultSchema "reidentification_audit"}} \(actor, reason, token, records_found, requested_in\)\n {4}VALUES \(session_user, p_reason, p_token, n, pg_current_xact_id\(\)\) RETURNING ticket INTO t;/, 't := 0;'),
  },
  // with standard_conforming_strings off the comment literal swallows the built-in statements
  'a backslash in a literal (read another way with standard_conforming_strings off)': {
    template: 'protect_table',
    text: `COMMENT ON TABLE {{rel schema name}} IS 'a\\';\n${BUILTIN}COMMENT ON TABLE {{rel schema name}} IS '; ALTER TABLE {{rel schema name}} DISABLE ROW LEVEL SECURITY; --';\n`,
  },
  'an empty template': { template: 'protect_table', text: '' },
  'text that is not SQL': { template: 'protect_table', text: `${BUILTIN}this is not sql;\n` },
};

const errorsOf = (files: Record<string, string>) => demoCopyErrors(files);

describe('an override of a policy template that takes protection away fails compile (TSF232)', () => {
  for (const [name, { template, text }] of Object.entries(WEAKENINGS)) {
    it(`${template}: ${name}`, () => {
      // the edit must have happened: a test of an unchanged template would prove nothing
      expect(text).not.toBe(DEFAULT_TEMPLATES[template]);
      const errors = errorsOf({ [`policies/${template}.hbs`]: text });
      expect(errors.map((d) => ({ code: d.code, file: d.file }))).toEqual([{ code: Codes.policyTemplate, file: `policies/${template}.hbs` }]);
      if (process.env.SHOW_MESSAGES) console.log(errors[0]!.message);
    });
  }

  it('the message names the statement and where it was rendered', () => {
    const [error] = errorsOf({ 'policies/protect_table.hbs': `${BUILTIN}\nGRANT SELECT ON {{rel schema name}} TO PUBLIC;\n` });
    expect(error!.message).toMatch(/^policies\/protect_table\.hbs \(as rendered for \w+\.\w+\) adds `GRANT SELECT ON "\w+"\."\w+" TO PUBLIC`, which is not among the additions an override may make \(GrantStmt\); an override may only add RESTRICTIVE policies/);
    expect(error!.line).toBe(BUILTIN.split('\n').length + 1);
  });

  it("the line is the template's, also where block helpers leave no line in the rendering", () => {
    const text = `{{!-- header --}}\n{{#if readable}}\n-- readable\n{{/if}}\n${BUILTIN}GRANT SELECT ON {{rel schema name}} TO PUBLIC;\n`;
    const [error] = errorsOf({ 'policies/protect_table.hbs': text });
    expect(error!.line).toBe(4 + BUILTIN.split('\n').length);
  });

  it('the statement and line are right after text that is not ASCII (the parser counts bytes)', () => {
    const text = `-- Überprüfung der Richtlinien — site additions\nCOMMENT ON TABLE {{rel schema name}} IS 'geprüft ✓';\n${BUILTIN}GRANT SELECT ON {{rel schema name}} TO PUBLIC;\n`;
    const [error] = errorsOf({ 'policies/protect_table.hbs': text });
    expect(error!.message).toMatch(/adds `GRANT SELECT ON "\w+"\."\w+" TO PUBLIC`, which/);
    expect(error!.line).toBe(2 + BUILTIN.split('\n').length);
  });

  it('a file that names no template is an error, not silently ignored', () => {
    const errors = errorsOf({ 'policies/protect_tabel.hbs': BUILTIN });
    expect(errors.map((d) => d.code)).toEqual([Codes.policyTemplate]);
    expect(errors[0]!.message).toContain('overrides no template');
  });

  it('a template that does not render (an unknown field) is an error', () => {
    const errors = errorsOf({ 'policies/protect_view.hbs': '{{no_such_field}}' });
    expect(errors.map((d) => d.code)).toEqual([Codes.policyTemplate]);
    expect(errors[0]!.message).toContain('does not render');
  });
});

describe('an override that only narrows compiles and is used', () => {
  const narrowing = `{{!-- our site's additions --}}
${BUILTIN}${RESTRICTIVE}CREATE INDEX IF NOT EXISTS {{ident (suffixed name "_brin")}} ON {{rel schema name}} USING brin ({{ident tenantColumn}});
COMMENT ON TABLE {{rel schema name}} IS 'protected by tsform';
`;

  it('the built-in with restrictive policies, an index and a comment compiles clean', () => {
    expect(errorsOf({ 'policies/protect_table.hbs': narrowing })).toEqual([]);
  });

  it('a restrictive condition may cast to the built-in scalar types', () => {
    const casts = `${BUILTIN}CREATE POLICY typed ON {{rel schema name}} AS RESTRICTIVE TO {{ident practices}} USING ({{ident tenantColumn}}::text <> '' AND CAST({{ident tenantColumn}} AS varchar(64)) IS NOT NULL AND '1'::int > 0 AND '2026-01-01'::date < current_date::pg_catalog.timestamptz);\n`;
    expect(errorsOf({ 'policies/protect_table.hbs': casts })).toEqual([]);
  });

  it('the built-in itself, laid out differently, compiles clean', () => {
    const relaidOut = BUILTIN.replaceAll(';\n', ';\n\n-- spaced out\n').replaceAll(' ON ', '\n  ON ');
    expect(errorsOf({ 'policies/protect_table.hbs': relaidOut, 'policies/protect_view.hbs': DEFAULT_TEMPLATES.protect_view! })).toEqual([]);
  });

  it('the renderer returns the override, and refuses a weakening one at every call (not only at compile)', () => {
    const config = (templates: PolicyConfig['templates']) => testPolicyConfig({ templates });
    const schemas = TEST_SCHEMAS;
    const rel = { node: 'model.m', schema: 'marts', identifier: 'm', kind: 'table' as const };
    const good = createPolicyRenderer(config({ protect_table: { text: narrowing, file: 'policies/protect_table.hbs' } }), 'practice_id', schemas);
    expect(good.protect(rel)).toContain('AS RESTRICTIVE');
    expect(good.protect(rel)).toContain('FORCE ROW LEVEL SECURITY');
    const bad = createPolicyRenderer(config({ protect_table: { text: WEAKENINGS['a GRANT to PUBLIC']!.text, file: 'policies/protect_table.hbs' } }), 'practice_id', schemas);
    expect(() => bad.protect(rel)).toThrow(expect.objectContaining({ code: Codes.policyTemplate }));
    expect(() => bad.protect(rel)).toThrow(expect.objectContaining({ code: Codes.policyTemplate }));
    // the views' template is not overridden: unaffected
    expect(bad.protect({ ...rel, kind: 'view' })).toContain('security_invoker = true');
  });
});
