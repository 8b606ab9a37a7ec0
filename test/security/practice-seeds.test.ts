/**
 * A seed joined on the practice id below a published relation (src/compile/practice-seeds.ts).
 * A seed listing one practice, inner-joined or matched by IN, keeps that practice alone; a seed
 * giving one practice a value of its own lets a predicate on it leave that practice out; beside a
 * total over every practice, either gives the practice's cells by differencing. So every
 * combination of such seeds' values must hold at least k practices (the demo: k = 11 of 221).
 * A seed's column meets a practice id only under the practice id's name and only by equality.
 */
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import type { Project } from '../../src/project/types.ts';
import { demoTenantIds } from '../ingest/support/capture-fixture.ts';
import { compileModel, shown, type ProbeModel, type ProbeSeed } from '../support/model-probe.ts';
import { PERSONS_SEL, PUB, Q, SP, STG_COLS, STG_LIST, byPatient, refused } from '../support/population-probes.ts';

const T = demoTenantIds().sort();
const E = '{{ref "pseudo_encounters"}}';
const PUB_COLUMNS = { condition_code: 'none', n: 'none' } as const;
const seed = (name: string, header: string[], rows: string[][]): ProbeSeed => ({ name, rows: [header, ...rows] });
/** Five regions of ~44 practices each. */
const regions = seed('regions', ['practice_id', 'region'], T.map((id, i) => [id, `r${i % 5}`]));
/** The same, but the first practice in a region of its own. */
const soloRegion = seed('regions', ['practice_id', 'region'], T.map((id, i) => [id, i === 0 ? 'solo' : `r${i % 5}`]));
/** One practice, listed. */
const target = seed('target', ['practice_id'], [[T[0]!]]);
/** Every practice, under another column name. */
const pids = seed('pids', ['pid', 'region'], T.map((id, i) => [id, `r${i % 5}`]));
/** Two seeds each of classes of 19 and more; together, the 20th practice is alone. */
const halves = [seed('side_a', ['practice_id', 'a'], T.map((id, i) => [id, i < 20 ? 'a' : 'b'])), seed('side_b', ['practice_id', 'b'], T.map((id, i) => [id, i < 19 ? 'x' : 'y']))];

const published = (select: string, seeds: ProbeSeed[]) => compileModel(PUB, `{{config k_anonymity_count="n"}}\n${select}`, PUB_COLUMNS, [], seeds);
const cells = (from: string, where = 'true') => `select c.encounter_class as condition_code, count(distinct c.person_token) as n from ${E} c ${from} where ${where} group by 1`;
const byRegion = (where: string) => `select r.region as condition_code, count(distinct c.person_token) as n from ${E} c join {{ref "regions"}} r on r.practice_id = c.practice_id where ${where} group by 1`;
/** A second pseudonymized persons model, with the published count per sex over it. */
const below = (sql: string, seeds: ProbeSeed[], extra: ProbeModel[] = []) =>
  compileModel(PUB, `{{config k_anonymity_count="n"}}\nselect p.sex, count(distinct p.person_token) as n from {{ref "pseudo_persons_b"}} p group by 1`, { sex: 'quasi', n: 'none' }, [
    ...extra,
    { file: 'models/research/pseudo_persons_b.sql', sql, columns: { practice_id: 'none', person_token: 'none', practice_token: 'none', zip3: 'quasi', sex: 'quasi', birth_year: 'quasi' } },
  ], seeds);

const classes = /joined on the practice id below a published relation, put \d+ practice\(s\) in combinations of values held by fewer than k=11 practices/;
const notAnId = /compares a practice id with values that are not practice ids/;

const cases: [string, () => Diagnostic[], RegExp][] = [
  ['a seed listing one practice, inner-joined', () => published(cells(`join {{ref "target"}} t on t.practice_id = c.practice_id`), [target]), classes],
  ['a seed listing one practice, by IN', () => published(cells('', `c.practice_id in (select t.practice_id from {{ref "target"}} t)`), [target]), classes],
  ['a seed listing one practice, left out by NOT EXISTS', () => published(cells('', `not exists (select 1 from {{ref "target"}} t where t.practice_id = c.practice_id)`), [target]), classes],
  ['a region of one practice, left out by a predicate', () => published(byRegion(`r.region <> 'solo'`), [soloRegion]), classes],
  ['a region of one practice, even grouped by', () => published(byRegion('true'), [soloRegion]), classes],
  ['two seeds whose values together leave one practice alone', () => published(cells(`join {{ref "side_a"}} a on a.practice_id = c.practice_id join {{ref "side_b"}} b on b.practice_id = c.practice_id`, `not (a.a = 'a' and b.b = 'x')`), halves), classes],
  ['a seed joined by a column not named practice_id', () => published(cells(`join {{ref "pids"}} s on s.pid = c.practice_id`), [pids]), notAnId],
  ['a seed whose practice id a CTE compares with a literal', () => published(`with t as (select r.practice_id from {{ref "regions"}} r where r.practice_id <> '${T[0]}') ${cells('join t on t.practice_id = c.practice_id')}`, [regions]), notAnId],
  ['a seed of one practice by NATURAL JOIN (its condition is not written out)', () => published(cells('natural join {{ref "target"}} t'), [target]), /joins by NATURAL JOIN/],
  ['a range join on the practice id', () => published(cells(`join {{ref "regions"}} r on c.practice_id > r.practice_id and r.region = 'r1'`), [regions]), notAnId],
  ['a range join between two pseudonymized relations', () => published(cells(`join {{ref "pseudo_persons"}} p on c.practice_id < p.practice_id and p.person_token = c.person_token`), []), notAnId],
  ['a pseudonymized model below, joined to a seed of one practice', () => below(`select ${Q} from {{ref "pseudo_persons"}} q join {{ref "target"}} t on t.practice_id = q.practice_id`, [target]), classes],
  ['a tokenizing model, joined to a seed of one practice', () => below(`select ${PERSONS_SEL} from ${SP} p ${byPatient} join {{ref "target"}} t on t.practice_id = p.practice_id`, [target]), classes],
  ['a staging model below the tokenizing model, joined to a seed of one practice', () =>
    below(`select ${PERSONS_SEL} from {{ref "stg_patients_b"}} p ${byPatient}`, [target], [
      { file: 'models/staging/stg_patients_b.sql', sql: `select ${STG_LIST.split(', ').map((c) => `p.${c}`).join(', ')} from ${SP} p join {{ref "target"}} t on t.practice_id = p.practice_id`, columns: STG_COLS },
    ]), classes],
];

describe('a seed that picks practices below a published relation is refused (TSF215)', () => {
  it.each(cases)('%s', (_n, run, message) => {
    const errors = run();
    refused(errors);
    expect(errors.map((e) => e.message).join('\n'), shown(errors)).toMatch(message);
  });

  it('names the model that joins the seed, at the seed\'s line', () => {
    const errors = published(`-- practices of one region\n${cells(`join {{ref "target"}} t on t.practice_id = c.practice_id`)}`, [target]);
    const found = errors.find((e) => classes.test(e.message));
    expect(found, shown(errors)).toMatchObject({ code: 'TSF215', file: PUB, line: 3 });
    expect(found!.message).toContain(`the smallest: 1, e.g. ${T[0]}`);
  });
});

describe('a seed of practice attributes in classes of k or more is accepted', () => {
  it.each([
    ['grouped by its region', () => published(byRegion('true'), [regions])],
    ['one region kept by a predicate', () => published(byRegion(`r.region = 'r1'`), [regions])],
    ['matched by IN a sub-select of one region', () => published(cells('', `c.practice_id in (select r.practice_id from {{ref "regions"}} r where r.region <> 'r2')`), [regions])],
  ])('%s', (_n, run) => {
    const errors = run();
    expect(errors, shown(errors)).toEqual([]);
  });
});

describe('practices withheld from research (tenants.yml research: false) do not count toward a class', () => {
  // Region r0 holds ~45 practices of tenants.yml; with all but 10 of them withheld, its published
  // cells come from 10 practices, fewer than k = 11.
  const r0 = T.filter((_, i) => i % 5 === 0);
  const withhold = (ids: readonly string[]) => (project: Project) => {
    for (const t of project.tenants) if (ids.includes(t.id)) t.research = false;
  };
  const byR0 = (ids: readonly string[]) => compileModel(PUB, `{{config k_anonymity_count="n"}}\n${byRegion(`r.region <> 'r0'`)}`, PUB_COLUMNS, [], [regions], withhold(ids));

  it('a region left with fewer than k practices that take part is refused', () => {
    const errors = byR0(r0.slice(10));
    refused(errors);
    expect(errors.map((e) => e.message).join('\n'), shown(errors)).toMatch(/the smallest: 10, .*that take part in research/);
  });

  it('the same region with k practices that take part is accepted, and so is one with none', () => {
    for (const ids of [r0.slice(11), r0]) {
      const errors = byR0(ids);
      expect(errors, shown(errors)).toEqual([]);
    }
  });
});
