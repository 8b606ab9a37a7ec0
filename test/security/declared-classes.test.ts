import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileWorkspace } from '../../src/cli/compile-stage.ts';
import { runCli } from '../../src/cli/program.ts';
import { readStateManifest } from '../../src/cli/slim-ci.ts';
import { DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import { classesLoweredSince, nameFloor } from '../../src/security/declared-classes.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/** `edits` (file → text replacements, each checked to apply) written over the original files in `dir`. */
type Edits = Record<string, [string, string][]>;
function writeEdited(dir: string, originals: ReadonlyMap<string, string>, edits: Edits): void {
  for (const [file, pairs] of Object.entries(edits)) {
    let text = originals.get(file)!;
    for (const [from, to] of pairs) {
      expect(text.includes(from), `${file} holds ${from}`).toBe(true);
      text = text.replace(from, to);
    }
    writeFileSync(join(dir, file), text);
  }
}

describe('the class a column name demands', () => {
  it.each([
    ['ssn', 'direct'], ['SSN', 'direct'], ['patient_ssn', 'direct'], ['socialSecurityNumber', 'direct'], ['ssn_digits', 'direct'], ['ssn4', 'direct'], ['Social Security Number', 'direct'], ['ＳＳＮ', 'direct'],
    ['mrn', 'direct'], ['medical_record_number', 'direct'], ['patient_id', 'direct'],
    ['first_name', 'direct'], ['FirstName', 'direct'], ['patient_last_name', 'direct'], ['surname', 'direct'], ['maiden_name', 'direct'],
    ['email', 'direct'], ['e_mail', 'direct'], ['email_address', 'direct'], ['home_phone', 'direct'], ['fax', 'direct'],
    ['address', 'direct'], ['street', 'direct'], ['address_line_1', 'direct'], ['passport_no', 'direct'], ['drivers_license', 'direct'],
    ['birth_date', 'quasi'], ['date_of_birth', 'quasi'], ['DOB', 'quasi'], ['birth_date_copy', 'quasi'], ['death_date', 'quasi'],
    ['zip', 'quasi'], ['zip_code', 'quasi'], ['postal_code', 'quasi'], ['zip_int', 'quasi'],
  ])('%s: %s', (column, floor) => {
    expect(nameFloor(column)?.floor).toBe(floor);
  });

  // Generalized forms and everyday columns that only contain a word of the vocabulary.
  it.each(['zip3', 'birth_year', 'age_band', 'practice_id', 'provider_id', 'person_token', 'encounter_class', 'name', 'provider_name', 'condition_description', 'mailbox_count', 'addressed', 'dobutamine_dose', 'lessons', 'deceased', 'classname'])(
    '%s: no floor',
    (column) => {
      expect(nameFloor(column)).toBeUndefined();
    },
  );
});

describe('declared classes cannot be lowered from models/ (TSF227)', () => {
  let demo: DemoCopy;
  const originals = new Map<string, string>();
  beforeAll(() => {
    demo = copyDemoProject();
    for (const f of ['tsform.yml', 'models/sources.yml', 'models/staging/_staging.yml', 'models/marts/_marts.yml']) originals.set(f, readFileSync(join(demo.dir, f), 'utf8'));
  });
  afterAll(() => demo?.remove());

  /** Compiles the demo with `edits` (file → text replacements), then puts the files back. */
  const compileWith = (edits: Edits): { errors: Diagnostic[]; warnings: Diagnostic[] } => {
    writeEdited(demo.dir, originals, edits);
    try {
      const ws = compileWorkspace(demo.dir, { write: false });
      return { errors: [], warnings: ws.diagnostics.filter((d) => d.code === 'TSF227') };
    } catch (err) {
      if (!(err instanceof DiagnosticsError)) throw err;
      return { errors: err.diagnostics.filter((d) => d.severity === 'error'), warnings: err.diagnostics.filter((d) => d.severity === 'warning' && d.code === 'TSF227') };
    } finally {
      for (const file of Object.keys(edits)) writeFileSync(join(demo.dir, file), originals.get(file)!);
    }
  };
  const lineOf = (file: string, text: string) => originals.get(file)!.split('\n').findIndex((l) => l.includes(text)) + 1;
  const where = (d: Diagnostic) => `${d.file}:${d.line} ${d.code}`;

  it('the demo compiles, and its two reviewed entries are both used', () => {
    expect(compileWith({})).toEqual({ errors: [], warnings: [] });
  });

  it('a source re-declared ssn: none is refused at its line, and the message says how to fix it', () => {
    const { errors } = compileWith({ 'models/sources.yml': [['{ name: ssn, phi: direct }', '{ name: ssn, phi: none }']] });
    expect(errors.map(where)).toEqual([`models/sources.yml:${lineOf('models/sources.yml', '{ name: ssn, phi: direct }')} TSF227`]);
    expect(errors[0]!.message).toMatch(/'ehr\.patients\.ssn' is declared phi: none, but it is a social security number: declare it phi: direct/);
    expect(errors[0]!.message).toMatch(/privacy\.not_identifiers in tsform\.yml/);
  });

  it('lowering by one step counts too (ssn: quasi), and so does leaving the class out', () => {
    const lowered = compileWith({ 'models/sources.yml': [['{ name: ssn, phi: direct }', '{ name: ssn, phi: quasi }']] });
    expect(lowered.errors.map((d) => d.code)).toEqual(['TSF227']);
    const omitted = compileWith({ 'models/sources.yml': [['{ name: mrn, phi: direct }', '{ name: mrn }']] });
    expect(omitted.errors.map((d) => d.message)).toEqual([expect.stringMatching(/'ehr\.patients\.mrn' has no phi class \(none by default\)/)]);
  });

  it('a quasi-identifier name needs at least quasi; a model yml is held to the same floor as a source', () => {
    const { errors } = compileWith({
      'models/sources.yml': [['{ name: zip, phi: quasi', '{ name: zip, phi: none']],
      'models/staging/_staging.yml': [['{ name: birth_date, phi: quasi', '{ name: birth_date, phi: none']],
    });
    expect(errors.map((d) => d.message.slice(0, d.message.indexOf(','))).sort()).toEqual(["column 'ehr.patients.zip' is declared phi: none", "column 'stg_patients.birth_date' is declared phi: none"]);
  });

  // Either order: the lowered declaration first (a column listed twice), or last (a yml file that sorts after the model's own).
  it('a second declaration of the same column is checked too: listed twice, or in a second yml entry for the model', async () => {
    const twice = compileWith({ 'models/sources.yml': [['{ name: ssn, phi: direct }', '{ name: ssn, phi: none }\n          - { name: ssn, phi: direct }']] });
    // A column listed twice is refused as such (load-properties.ts), before its classes are compared.
    expect(twice.errors.map((d) => d.message)).toEqual([expect.stringMatching(/ehr\.patients: column 'ssn' is listed twice/)]);
    writeFileSync(join(demo.dir, 'models/staging/_zz_again.yml'), 'models:\n  - name: stg_patients\n    columns:\n      - { name: ssn, phi: none }\n');
    try {
      const again = compileWith({});
      // A second yml entry for the model is refused as such (load-project.ts), as a column listed twice is.
      expect(again.errors.map((d) => `${d.file}:${d.line} ${d.code}`)).toEqual(['models/staging/_zz_again.yml:2 TSF104']);
    } finally {
      rmSync(join(demo.dir, 'models/staging/_zz_again.yml'));
    }
  });

  it("the vault's identity columns keep their class whatever they are called, and tsform.yml cannot list them away", () => {
    // `sex` has no name floor: only its role (privacy.identity.sex) holds it at quasi.
    const { errors } = compileWith({
      'models/staging/_staging.yml': [['      - name: sex\n        phi: quasi', '      - name: sex\n        phi: none']],
      'tsform.yml': [['not_identifiers: [ehr.providers.address, ehr.providers.zip]', 'not_identifiers: [ehr.providers.address, ehr.providers.zip, stg_patients.sex]']],
    });
    expect(errors.map((d) => d.message)).toEqual([expect.stringMatching(/'stg_patients\.sex' is declared phi: none, but it is the vault's identity column \(tsform\.yml privacy\.identity\.sex\).*a role cannot be declared away/)]);
  });

  it('the attack end to end: source and staging both say ssn: none and a research model selects it: refused before anything runs', () => {
    const { errors } = compileWith({
      'models/sources.yml': [['{ name: ssn, phi: direct }', '{ name: ssn, phi: none }']],
      'models/staging/_staging.yml': [['{ name: ssn, phi: direct }', '{ name: ssn, phi: none }']],
    });
    expect(errors.map((d) => `${d.file} ${d.code}`).sort()).toEqual(['models/sources.yml TSF227', 'models/staging/_staging.yml TSF227']);
  });

  it('a listed column passes; an entry that names nothing with a name floor is a warning at its line in tsform.yml', () => {
    const allowed = compileWith({
      'models/sources.yml': [['{ name: ssn, phi: direct }', '{ name: ssn, phi: none }']],
      'tsform.yml': [['not_identifiers: [ehr.providers.address, ehr.providers.zip]', 'not_identifiers: [ehr.providers.address, ehr.providers.zip, ehr.patients.ssn, ehr.patients.ssm]']],
    });
    expect(allowed.errors).toEqual([]);
    expect(allowed.warnings.map((d) => [d.file, d.line, d.message])).toEqual([
      ['tsform.yml', lineOf('tsform.yml', 'not_identifiers:'), expect.stringMatching(/lists 'ehr\.patients\.ssm', which names no declared column: remove it/)],
    ]);
  });
});

describe('slim CI: a pull request compared with production cannot lower a class (TSF228)', () => {
  let demo: DemoCopy;
  let state: string;
  const originals = new Map<string, string>();
  beforeAll(() => {
    demo = copyDemoProject();
    for (const f of ['tsform.yml', 'models/sources.yml', 'models/staging/_staging.yml']) originals.set(f, readFileSync(join(demo.dir, f), 'utf8'));
    compileWorkspace(demo.dir);
    state = join(demo.dir, 'prod-state');
    mkdirSync(state);
    copyFileSync(join(demo.dir, 'target/manifest.json'), join(state, 'manifest.json'));
  });
  afterAll(() => demo?.remove());

  const edited = (edits: Edits): void => {
    for (const [file, text] of originals) writeFileSync(join(demo.dir, file), text);
    writeEdited(demo.dir, originals, edits);
  };
  const lowered = () => {
    const ws = compileWorkspace(demo.dir, { write: false });
    return classesLoweredSince(ws.project, ws.manifest, readStateManifest(state));
  };
  const sourcesLine = (text: string) => originals.get('models/sources.yml')!.split('\n').findIndex((l) => l.includes(text)) + 1;
  // encounter_id is direct in the demo and its name marks nothing: only production's manifest knows.
  const ENCOUNTER_ID = '{ name: encounter_id, phi: direct, tests: [not_null] }';
  const ENCOUNTER_ID_NONE = '{ name: encounter_id, phi: none, tests: [not_null] }';

  it('an unchanged project passes; so do a raised class and a new column', () => {
    edited({});
    expect(lowered()).toEqual([]);
    edited({ 'models/sources.yml': [['{ name: marital_status, phi: quasi }', '{ name: marital_status, phi: direct }']] });
    expect(lowered()).toEqual([]);
  });

  it('a column lowered below production, whatever its name, is refused at its line', () => {
    expect(originals.get('models/sources.yml')).toContain(ENCOUNTER_ID);
    edited({ 'models/sources.yml': [[ENCOUNTER_ID, ENCOUNTER_ID_NONE], ['{ name: marital_status, phi: quasi }', '{ name: marital_status, phi: none }']] });
    expect(lowered().map((d) => [d.file, d.line, d.code, d.message])).toEqual([
      ['models/sources.yml', sourcesLine('{ name: marital_status, phi: quasi }'), 'TSF228', expect.stringMatching(/'ehr\.patients\.marital_status' is declared phi: none; production's manifest has it phi: quasi/)],
      ['models/sources.yml', sourcesLine(ENCOUNTER_ID), 'TSF228', expect.stringMatching(/'ehr\.encounters\.encounter_id' is declared phi: none; production's manifest has it phi: direct\. Keep phi: direct, or list/)],
    ]);
  });

  it('a declaration removed while its relation stays counts as lowered; a listed column passes', () => {
    edited({ 'models/sources.yml': [[`          - ${ENCOUNTER_ID}\n`, '']] });
    expect(lowered().map((d) => d.message)).toEqual([expect.stringMatching(/'ehr\.encounters\.encounter_id' is no longer declared; production's manifest has it phi: direct/)]);
    edited({
      'models/sources.yml': [[ENCOUNTER_ID, ENCOUNTER_ID_NONE]],
      'tsform.yml': [['not_identifiers: [ehr.providers.address, ehr.providers.zip]', 'not_identifiers: [ehr.providers.address, ehr.providers.zip, ehr.encounters.encounter_id]']],
    });
    expect(lowered()).toEqual([]);
  });

  it('`compile --state` and `ls --state` exit 2 with the error, and target/manifest.json stays as it was', async () => {
    edited({ 'models/sources.yml': [[ENCOUNTER_ID, ENCOUNTER_ID_NONE]] });
    const manifest = join(demo.dir, 'target/manifest.json');
    const before = { text: readFileSync(manifest, 'utf8'), mtime: statSync(manifest).mtimeMs };
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      for (const command of ['compile', 'ls']) {
        stderr.mockClear();
        const code = await runCli(['node', 'tsform', command, '--project-dir', demo.dir, '--state', state], () => {});
        const printed = stderr.mock.calls.map((c) => String(c[0])).join('');
        expect({ command, code, tsf228: /models\/sources\.yml:\d+: error TSF228: column 'ehr\.encounters\.encounter_id'/.test(printed) }).toEqual({ command, code: 2, tsf228: true });
      }
    } finally {
      stderr.mockRestore();
    }
    expect({ text: readFileSync(manifest, 'utf8'), mtime: statSync(manifest).mtimeMs }).toEqual(before);
  });
});
