import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/**
 * No model writes where tsform keeps what enforces privacy. The row-level security membership
 * table (role → practice) lives in policies.yml's security_schema: a shared incremental model
 * named `members` there, merged on (role_name, practice_id), would add a practice to a role — the
 * one row every policy trusts. Before this check it compiled clean (the vault and metadata schemas
 * were refused, that one and the engines' catalogs were not).
 */

const MEMBERS = (schema: string) =>
  `{{config scope="shared" schema="${schema}" materialized="incremental" unique_key="role_name,practice_id"}}\nselect cast('northshore_group' as varchar) as role_name, cast('p_x' as varchar) as practice_id\n`;

let demo: DemoCopy | undefined;
afterEach(() => demo?.remove());

function errorsOf(files: Record<string, string>, edit: (dir: string) => void = () => {}): Diagnostic[] {
  demo = copyDemoProject({ files });
  edit(demo.dir);
  const project = loadProject(demo.dir);
  const loading = project.diagnostics.filter((d) => d.severity === 'error');
  return loading.length > 0 ? loading : compileErrors(project);
}

const brief = (ds: Diagnostic[]) => ds.map((d) => ({ code: d.code, file: d.file, line: d.line }));

describe("a model may not write to tsform's own schemas or the engine's catalogs", () => {
  for (const schema of ['tsform_security', 'TSFORM_Security', 'vault', 'tsform_meta', 'pg_catalog', 'pg_temp', 'information_schema']) {
    it(`schema="${schema}": TSF205 at the model's config`, () => {
      const errors = errorsOf({ 'models/marts/members.sql': MEMBERS(schema) });
      expect(brief(errors)).toEqual([{ code: Codes.invalidConfig, file: 'models/marts/members.sql', line: 1 }]);
      expect(errors[0]!.message).toContain(`schema '${schema}'`);
    });
  }

  it('the security schema policies.yml names, not only the default one', () => {
    const rename = (dir: string) => {
      const file = join(dir, 'policies/policies.yml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('security_schema: tsform_security', 'security_schema: rls_members'));
    };
    expect(brief(errorsOf({ 'models/marts/members.sql': MEMBERS('rls_members') }, rename))).toEqual([
      { code: Codes.invalidConfig, file: 'models/marts/members.sql', line: 1 },
    ]);
    demo!.remove();
    // The default name is then an ordinary schema.
    expect(errorsOf({ 'models/marts/members.sql': MEMBERS('tsform_security') }, rename)).toEqual([]);
  });

  it('a folder of tsform.yml that puts its models there: each model is refused', () => {
    const errors = errorsOf({}, (dir) => {
      mkdirSync(join(dir, 'models/marts/admin'));
      writeFileSync(join(dir, 'models/marts/admin/members.sql'), MEMBERS('tsform_security').replace(' schema="tsform_security"', ''));
      const file = join(dir, 'tsform.yml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('  marts:\n', '  marts/admin:\n    schema: tsform_security\n  marts:\n'));
    });
    expect(errors.map((d) => [d.code, d.file])).toEqual([[Codes.invalidConfig, 'models/marts/admin/members.sql']]);
  });

  it("policies.yml's security_schema may not be one of the project's schemas", () => {
    for (const schema of ['marts', 'pseudo', 'Research']) {
      const errors = errorsOf({}, (dir) => {
        const file = join(dir, 'policies/policies.yml');
        writeFileSync(file, readFileSync(file, 'utf8').replace('security_schema: tsform_security', `security_schema: ${schema}`));
      });
      expect(errors.map((d) => [d.code, d.file]), schema).toEqual([[Codes.invalidConfig, 'policies/policies.yml']]);
      expect(errors[0]!.line).toBeGreaterThan(1);
      demo!.remove();
    }
  });

  it("a source may not be declared in tsform's row-level security schema or in the engine's catalog (pg_stats holds the most common values of every column the owner reads)", () => {
    for (const [schema, table] of [['tsform_security', 'members'], ['pg_catalog', 'pg_stats'], ['PG_CATALOG', 'pg_stats'], ['information_schema', 'columns'], ['pg_toast', 'x']]) {
      for (const scope of ['shared', 'tenant']) {
        const sources = `sources:\n  - name: sys\n    schema: ${schema}\n    scope: ${scope}\n    tables:\n      - name: ${table}\n`;
        const errors = errorsOf({ 'models/zz_sys.yml': sources, 'models/marts/copied.sql': `{{config scope="${scope}"}}\nselect * from {{source "sys" "${table}"}}\n` });
        expect(brief(errors), `${scope} ${schema}`).toEqual([{ code: Codes.invalidConfig, file: 'models/zz_sys.yml', line: 6 }]);
        demo!.remove();
      }
    }
  });

  it("nor a schema every database has (public: writable by every role before PostgreSQL 15, so another role could own the membership table)", () => {
    for (const schema of ['public', 'Public', 'information_schema', 'pg_catalog', 'pg_temp']) {
      const errors = errorsOf({}, (dir) => {
        const file = join(dir, 'policies/policies.yml');
        writeFileSync(file, readFileSync(file, 'utf8').replace('security_schema: tsform_security', `security_schema: ${schema}`));
      });
      expect(errors.map((d) => [d.code, d.file]), schema).toEqual([[Codes.invalidConfig, 'policies/policies.yml']]);
      expect(errors[0]!.message, schema).toContain('a schema every database has');
      demo!.remove();
    }
  });

  it('tsform.yml may not give the vault, metadata or research schema to another role (schemas.vault: marts would put the token map where practice roles read)', () => {
    for (const [own, other] of [['vault', 'marts'], ['meta', 'staging'], ['research', 'marts'], ['vault', 'research']]) {
      const errors = errorsOf({}, (dir) => {
        const file = join(dir, 'tsform.yml');
        const text = readFileSync(file, 'utf8');
        const schema = text.match(new RegExp(`\\n  ${other}: (\\w+)`))![1]!;
        writeFileSync(file, text.replace(new RegExp(`\\n  ${own}: \\w+`), `\n  ${own}: ${schema.toUpperCase()}`));
      });
      const config = errors.filter((d) => d.file === 'tsform.yml');
      expect(config.length, `${own}=${other}`).toBeGreaterThan(0);
      expect(config.every((d) => d.code === Codes.invalidConfig && d.line !== undefined && d.line > 1), `${own}=${other}`).toBe(true);
      expect(config[0]!.message).toContain(`schemas.${own}`);
      demo!.remove();
    }
  });

  it("an ordinary schema of the project's own choosing still compiles", () => {
    expect(errorsOf({ 'models/marts/codes.sql': '{{config scope="shared" schema="reference"}}\nselect 1 as a\n' })).toEqual([]);
  });
});
