import type { PolicyConfig, Schemas } from '../../src/project/types.ts';

/** The demo's schemas, for renderers built without a project. */
export const TEST_SCHEMAS: Schemas = { raw: 'raw', seeds: 'ref', staging: 'staging', marts: 'marts', research: 'research', vault: 'vault', meta: 'tsform_meta' };

/** A policies.yml as read, with the demo's role names and `marts` protected and readable; `edit` changes any field. */
export function testPolicyConfig(edit: Partial<PolicyConfig> = {}): PolicyConfig {
  return {
    roles: { owner: 'tsform_owner', researchReader: 'research_reader', vaultSteward: 'vault_steward', practices: 'tsform_practices', practiceGroups: 'tsform_practice_groups' },
    practiceRolePattern: 'practice_{tenant}',
    groups: [],
    securitySchema: 'tsform_security',
    protectSchemas: ['marts'],
    protectRelations: [],
    practiceSchemas: ['marts'],
    researchSchemas: ['research'],
    templates: {},
    file: 'policies/policies.yml',
    line: 1,
    ...edit,
  };
}
