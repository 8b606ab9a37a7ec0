import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';

/**
 * A YAML file turned into plain JS values, remembering the line of every mapping and sequence
 * (and of each key) so that shape errors found later can still point at a line.
 */
export interface YamlFile {
  file: string;
  value: unknown;
  lineOf(obj: object): number | undefined;
  lineOfKey(obj: object, key: string): number | undefined;
}

export function parseYamlFile(text: string, file: string, diagnostics: Diagnostic[]): YamlFile | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const pos = lineCounter.linePos(err.pos[0]);
      diagnostics.push(
        diagnostic(Codes.yamlSyntax, `invalid YAML: ${firstLine(err.message)}`, { file, line: pos.line, column: pos.col }),
      );
    }
    return undefined;
  }
  const lines = new WeakMap<object, number>();
  const keyLines = new WeakMap<object, Map<string, number>>();
  const lineAt = (n: Node | null | undefined) =>
    n?.range ? lineCounter.linePos(n.range[0]).line : undefined;

  const toJs = (n: unknown): unknown => {
    if (isMap(n)) {
      const out: Record<string, unknown> = {};
      const keys = new Map<string, number>();
      for (const pair of n.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        out[k] = toJs(pair.value);
        const kl = lineAt(pair.key as Node);
        if (kl !== undefined) keys.set(k, kl);
      }
      const l = lineAt(n);
      if (l !== undefined) lines.set(out, l);
      keyLines.set(out, keys);
      return out;
    }
    if (isSeq(n)) {
      const out = n.items.map(toJs);
      const l = lineAt(n);
      if (l !== undefined) lines.set(out, l);
      return out;
    }
    if (isScalar(n)) return n.value;
    // An alias was handed on as the library's node (its fields then read as unknown keys, at no
    // line): tsform's files take values written out.
    if (isAlias(n)) {
      diagnostics.push(diagnostic(Codes.yamlSyntax, `invalid YAML: the alias *${n.source} is not read in tsform's files; write the value out`, { file, line: lineAt(n) }));
      return null;
    }
    return n === undefined ? null : n;
  };

  return {
    file,
    value: toJs(doc.contents),
    lineOf: (obj) => lines.get(obj),
    lineOfKey: (obj, key) => keyLines.get(obj)?.get(key) ?? lines.get(obj),
  };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads typed fields from one YAML mapping and records a diagnostic for each wrong one. */
export class YamlReader {
  constructor(
    readonly y: YamlFile,
    readonly diagnostics: Diagnostic[],
  ) {}

  fail(obj: object | undefined, key: string | undefined, message: string, code: Diagnostic['code'] = Codes.yamlShape): void {
    const line = obj ? (key ? this.y.lineOfKey(obj, key) : this.y.lineOf(obj)) : undefined;
    this.diagnostics.push(diagnostic(code, message, { file: this.y.file, line }));
  }

  string(obj: Record<string, unknown>, key: string, opts: { required: true }): string | undefined;
  string(obj: Record<string, unknown>, key: string, opts?: { required?: boolean }): string | undefined;
  string(obj: Record<string, unknown>, key: string, opts: { required?: boolean } = {}): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) {
      if (opts.required) this.fail(obj, undefined, `missing required key '${key}'`);
      return undefined;
    }
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') {
      this.fail(obj, key, `'${key}' must be a string`);
      return undefined;
    }
    return v;
  }

  stringList(obj: Record<string, unknown>, key: string): string[] {
    const v = obj[key];
    if (v === undefined || v === null) return [];
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      this.fail(obj, key, `'${key}' must be a list of strings`);
      return [];
    }
    return v as string[];
  }

  record(obj: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v)) {
      this.fail(obj, key, `'${key}' must be a mapping`);
      return undefined;
    }
    return v;
  }

  list(obj: Record<string, unknown>, key: string): unknown[] {
    const v = obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(obj, key, `'${key}' must be a list`);
      return [];
    }
    return v;
  }

  /** A YAML boolean; `'false'` quoted or `no` as a string is refused, not read as true. */
  boolean(obj: Record<string, unknown>, key: string, fallback: boolean): boolean {
    const v = obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      this.fail(obj, key, `'${key}' must be true or false`);
      return fallback;
    }
    return v;
  }

  positiveInt(obj: Record<string, unknown>, key: string, fallback: number): number {
    const v = obj[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      this.fail(obj, key, `'${key}' must be a positive integer`);
      return fallback;
    }
    return v;
  }
}
