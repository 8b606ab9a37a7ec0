// placeholder replaced by the verifier implementation
export interface VerifyInput { url: string }
export interface VerifyReport { failures: number }
export async function verifyPolicies(_input: unknown): Promise<VerifyReport> {
  throw new Error('not implemented');
}
export function formatVerifyReport(_r: VerifyReport): string {
  return '';
}
