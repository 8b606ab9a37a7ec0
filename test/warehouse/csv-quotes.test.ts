import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CsvQuoteCheck } from '../../src/warehouse/csv-quotes.ts';

/** The quote check agrees with csv-parse (loadCsvText's options, ragged rows aside), however the bytes are cut. */
describe('CsvQuoteCheck', () => {
  const check = (chunks: Buffer[]) => {
    const c = new CsvQuoteCheck();
    return chunks.every((b) => c.feed(b)) && c.end();
  };
  const csvParseTakes = (text: Buffer) => {
    try {
      parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true });
      return true;
    } catch {
      return false;
    }
  };
  const samples = [
    'a,b\n1,2\n',
    '"a","b"\r\n"1","2"\r\n',
    'a,b\n"x ""y"" z",2\n',
    'a,b\n"",""\n',
    'a,b\n"""",2\n',
    'a,b\n"multi\nline\r\nfield",2\n',
    'a,b\n"x"',
    '\ufeff"a",b\n1,2\n',
    'a,b\nab"c,2\n',
    'a,b\n"x" ,2\n',
    'a,b\n "x",2\n',
    'a,b\n"x"y,2\n',
    'a,b\n"x\n',
    'a,b\n"x""\n',
    'a,b\n1,"2"\r',
    'a,b\n1,2"\n',
    '"',
    '""',
    'a\n"x"\n"y"z\n',
    'a,b\r\n"1","2"\r\n"3",4',
    'a,b\r"1","2"\r"3",4\r',
    'a,b\r\n"1","2"\n',
    '"a"\r\n"1"\r\n',
  ];
  it.each(samples)('%j: as csv-parse, whole and cut at every byte', (text) => {
    const bytes = Buffer.from(text);
    const expected = csvParseTakes(bytes);
    expect(check([bytes])).toBe(expected);
    for (let i = 0; i <= bytes.length; i++) expect(check([bytes.subarray(0, i), bytes.subarray(i)]), `cut at ${i}`).toBe(expected);
    expect(check([...bytes].map((b) => Buffer.from([b])))).toBe(expected);
  });
});
