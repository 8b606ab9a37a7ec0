import { describe, expect, it } from 'vitest';
import type { OpenRun } from '../../src/adapters/job-queue.ts';
import { chooseRun, RESUME_WINDOW_SECONDS } from '../../src/cli/run-resumption.ts';

const rule = { key: 'k', newRunId: 'new', resumeWithinSeconds: RESUME_WINDOW_SECONDS };
const run = (runId: string, o: Partial<OpenRun> = {}): OpenRun => ({ runId, key: 'k', live: false, silentForSeconds: 5, ...o });

describe('chooseRun: which unfinished distributed run a coordinator serves', () => {
  it('with no unfinished run, a new one', () => {
    expect(chooseRun([], rule)).toEqual({ runId: 'new', mode: 'new', abandon: [] });
  });

  it('joins the run a live coordinator of its selection serves, and leaves it open', () => {
    expect(chooseRun([run('a', { live: true, silentForSeconds: 0 })], rule)).toMatchObject({ runId: 'a', mode: 'joined', abandon: [] });
  });

  it('treats a session that holds the run but stopped renewing for the whole window as gone (a vanished host)', () => {
    expect(chooseRun([run('a', { live: true, silentForSeconds: RESUME_WINDOW_SECONDS + 1 })], rule)).toEqual({ runId: 'new', mode: 'new', abandon: ['a'] });
  });

  it('resumes its selection\'s run whose coordinator stopped within the window (Ctrl-C or kill -9 alike)', () => {
    expect(chooseRun([run('a', { silentForSeconds: RESUME_WINDOW_SECONDS })], rule)).toMatchObject({ runId: 'a', mode: 'resumed', abandon: [] });
  });

  it('starts afresh when its coordinator stopped longer ago, and closes the old run', () => {
    expect(chooseRun([run('a', { silentForSeconds: RESUME_WINDOW_SECONDS + 1 })], rule)).toEqual({ runId: 'new', mode: 'new', abandon: ['a'] });
    expect(chooseRun([run('a', { silentForSeconds: 86_400 })], rule)).toEqual({ runId: 'new', mode: 'new', abandon: ['a'] });
  });

  it('closes the project\'s other runs whose coordinator is gone (another selection, a changed tenants.yml), never a live one', () => {
    const open = [run('other-dead', { key: 'x', silentForSeconds: 1 }), run('other-live', { key: 'y', live: true, silentForSeconds: 0 }), run('mine', { silentForSeconds: 2 })];
    expect(chooseRun(open, rule)).toMatchObject({ runId: 'mine', mode: 'resumed', abandon: ['other-dead'] });
  });

  it('--resume names a run however long ago it stopped; a run of another selection, or none open, is refused (TSF462)', () => {
    const old = run('a', { silentForSeconds: 86_400 });
    expect(chooseRun([old], { ...rule, resume: 'a' })).toMatchObject({ runId: 'a', mode: 'resumed', abandon: [] });
    expect(() => chooseRun([run('a', { key: 'other' })], { ...rule, resume: 'a' })).toThrow(/TSF462|another command, selection/);
    expect(() => chooseRun([], { ...rule, resume: 'a' })).toThrow(/not an unfinished distributed run/);
    try {
      chooseRun([], { ...rule, resume: 'a' });
    } catch (e) {
      expect((e as { code?: string }).code).toBe('TSF462');
    }
  });
});
