import { describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import { readConfig } from '../../src/project/load-config.ts';
import { DEFAULT_LINKAGE, MATCH_KEY_NAMES } from '../../src/project/linkage-config.ts';
import { parseYamlFile } from '../../src/project/yaml-file.ts';

/** `privacy.identity` linkage settings in tsform.yml (issue 17): defaults, and every wrong key an error with code, file and line. */

function read(privacy: string): { config: ReturnType<typeof readConfig>; diagnostics: Pick<Diagnostic, 'code' | 'file' | 'line'>[] } {
  const diagnostics: Diagnostic[] = [];
  const config = readConfig(parseYamlFile(`name: demo\nprivacy:\n${privacy}`, 'tsform.yml', diagnostics), diagnostics);
  return { config, diagnostics: diagnostics.map(({ code, file, line }) => ({ code, file, line })) };
}

describe('privacy.identity linkage settings', () => {
  it('defaults: every key but the two that need an SSN to tell namesakes apart, one-digit tolerance, 9xx invalid', () => {
    const { config, diagnostics } = read('  k: 11\n');
    expect(diagnostics).toEqual([]);
    expect(config.privacy!.identity.linkage).toEqual(DEFAULT_LINKAGE);
    expect(DEFAULT_LINKAGE.matchKeys).toEqual(MATCH_KEY_NAMES.filter((k) => k !== 'name_year' && k !== 'name_monthday'));
    expect(DEFAULT_LINKAGE).toMatchObject({ birthDateTolerance: 'one_digit', ssnArea9xx: 'invalid', maxKeyHolders: 50 });
  });

  it('reads the settings', () => {
    const { config, diagnostics } = read('  identity:\n    ssn: social\n    match_keys: [ssn_dob, name_year]\n    birth_date_tolerance: exact\n    ssn_area_9xx: valid\n    max_key_holders: 9\n');
    expect(diagnostics).toEqual([]);
    expect(config.privacy!.identity).toMatchObject({ ssn: 'social', linkage: { matchKeys: ['ssn_dob', 'name_year'], birthDateTolerance: 'exact', ssnArea9xx: 'valid', maxKeyHolders: 9 } });
  });

  it('an unknown key under privacy.identity or privacy is TSF117 with its line', () => {
    expect(read('  identity:\n    first_name: given\n    match_key: [ssn_dob]\n').diagnostics).toEqual([{ code: Codes.unknownKey, file: 'tsform.yml', line: 5 }]);
    expect(read('  k: 11\n  linkage: {}\n').diagnostics).toEqual([{ code: Codes.unknownKey, file: 'tsform.yml', line: 4 }]);
  });

  it('unknown values are TSF205 with their line; an empty key list is refused', () => {
    const { diagnostics } = read('  identity:\n    match_keys: [ssn_dob, soundex_only]\n    birth_date_tolerance: two_digits\n    ssn_area_9xx: maybe\n');
    expect(diagnostics).toEqual([
      { code: Codes.invalidConfig, file: 'tsform.yml', line: 4 },
      { code: Codes.invalidConfig, file: 'tsform.yml', line: 5 },
      { code: Codes.invalidConfig, file: 'tsform.yml', line: 6 },
    ]);
    expect(read('  identity:\n    match_keys: []\n').diagnostics).toEqual([{ code: Codes.invalidConfig, file: 'tsform.yml', line: 4 }]);
  });
});
