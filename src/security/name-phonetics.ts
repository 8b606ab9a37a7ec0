/**
 * Name forms that survive re-typing, for the linkage match keys (issue 17). Pure.
 *
 * Soundex is written here rather than taken from npm (`soundex-code` would do): this worktree's
 * node_modules is shared with other checkouts and may not be changed, and American Soundex is a
 * fixed, twenty-line algorithm (Knuth, TAOCP vol. 3) with nothing to keep up to date.
 */

const SOUNDEX_CODE: Readonly<Record<string, string>> = {
  b: '1', f: '1', p: '1', v: '1',
  c: '2', g: '2', j: '2', k: '2', q: '2', s: '2', x: '2', z: '2',
  d: '3', t: '3',
  l: '4',
  m: '5', n: '5',
  r: '6',
};

/**
 * American Soundex of the letters a–z in `name` (other characters ignored): first letter and
 * three digits, '' when there is no letter. H and W do not separate equal codes; vowels do.
 */
export function soundex(name: string): string {
  const letters = name.toLowerCase().replace(/[^a-z]/g, '');
  if (letters === '') return '';
  let out = letters[0]!.toUpperCase();
  let previous = SOUNDEX_CODE[letters[0]!] ?? '';
  for (const ch of letters.slice(1)) {
    const code = SOUNDEX_CODE[ch];
    if (code !== undefined && code !== previous) out += code;
    if (out.length === 4) break;
    // h and w are transparent: "Ashcraft" is A261, not A226
    if (ch !== 'h' && ch !== 'w') previous = code ?? '';
  }
  return out.padEnd(4, '0');
}

/**
 * Common English given-name diminutives → the formal names they stand for. Small on purpose: a
 * nickname that could stand for names of both sexes (alex, sam, chris) lists both, and the sex
 * guard of the resolution keeps the two persons apart.
 */
const NICKNAMES: Readonly<Record<string, readonly string[]>> = {
  abby: ['abigail'], al: ['albert', 'alfred'], alex: ['alexander', 'alexandra'], andy: ['andrew'], bart: ['bartholomew'],
  becky: ['rebecca'], beth: ['elizabeth'], betsy: ['elizabeth'], betty: ['elizabeth'], bill: ['william'], billy: ['william'],
  bob: ['robert'], bobby: ['robert'], cathy: ['catherine', 'katherine'], charlie: ['charles'], chris: ['christopher', 'christine'],
  chuck: ['charles'], dan: ['daniel'], danny: ['daniel'], dave: ['david'], deb: ['deborah'], debbie: ['deborah'], dick: ['richard'],
  don: ['donald'], ed: ['edward'], eddie: ['edward'], fred: ['frederick'], freddie: ['frederick'], greg: ['gregory'], hank: ['henry'],
  harry: ['henry', 'harold'], jack: ['john'], jake: ['jacob'], jim: ['james'], jimmy: ['james'], jen: ['jennifer'], jenny: ['jennifer'],
  jerry: ['gerald'], jess: ['jessica'], joe: ['joseph'], joey: ['joseph'], johnny: ['john'], jon: ['jonathan', 'john'], kate: ['katherine', 'catherine'],
  kathy: ['katherine', 'kathleen'], katie: ['katherine'], ken: ['kenneth'], larry: ['lawrence'], liz: ['elizabeth'], lizzie: ['elizabeth'],
  maggie: ['margaret'], marge: ['margaret'], matt: ['matthew'], meg: ['margaret'], mike: ['michael'], mikey: ['michael'], nancy: ['ann', 'anne'],
  ned: ['edward'], nick: ['nicholas'], pat: ['patrick', 'patricia'], patty: ['patricia'], peggy: ['margaret'], pete: ['peter'], ray: ['raymond'],
  rich: ['richard'], rick: ['richard'], rob: ['robert'], ron: ['ronald'], sam: ['samuel', 'samantha'], steve: ['stephen', 'steven'],
  sue: ['susan'], susie: ['susan'], ted: ['edward', 'theodore'], tim: ['timothy'], tom: ['thomas'], tommy: ['thomas'], tony: ['anthony'],
  trish: ['patricia'], vicky: ['victoria'], will: ['william'], willy: ['william'],
};

/** Every formal name a nickname table lists, with one of its nicknames (the benchmark's "typed as a nickname"). */
export const FORMAL_TO_NICKNAME: ReadonlyMap<string, string> = new Map(
  Object.entries(NICKNAMES).flatMap(([nick, formals]) => formals.map((formal) => [formal, nick] as const)).reverse(),
);

/**
 * A normalized given name (letters and digits, lower case) as typed, then the formal names it is a
 * nickname of. As typed too: a typo in a nickname ("Jno") must still meet the nickname. A trailing
 * digit run (Synthea writes "Bill123") stays on every form.
 */
export function formalGivenNames(normalized: string): readonly string[] {
  const match = /^(\D*)(\d*)$/.exec(normalized);
  if (!match) return [normalized];
  const [, letters, digits] = match as unknown as [string, string, string];
  const formals = NICKNAMES[letters];
  return formals ? [normalized, ...formals.map((f) => f + digits)] : [normalized];
}

/** The characters of a text sorted: the same for any order of its letters (transpositions, swapped names). */
export function sortedCharacters(text: string): string {
  return [...text].sort().join('');
}
