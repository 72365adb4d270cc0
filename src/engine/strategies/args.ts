/**
 * The text form of a strategy, `name[:args]` with args a comma list of `key=value` or bare words, read one
 * parameter at a time by the strategy's own module. Every error names the whole text and the parameter.
 */

export class StrategyArgs {
  private readonly entries: { key: string; value: string | undefined }[];

  constructor(
    readonly text: string,
    readonly name: string,
    rest: string | undefined,
  ) {
    const args = rest === undefined ? [] : rest.split(',').map((s) => s.trim());
    if (rest !== undefined && args.some((a) => a === '')) this.fail('empty parameter');
    this.entries = args.map((arg) => {
      const i = arg.indexOf('=');
      return i < 0 ? { key: arg, value: undefined } : { key: arg.slice(0, i), value: arg.slice(i + 1) };
    });
  }

  /** Splits `name[:args]`; the name is lower-cased (names are case-insensitive). */
  static parse(text: string): StrategyArgs {
    const trimmed = text.trim();
    const i = trimmed.indexOf(':');
    const [name, rest] = i < 0 ? [trimmed, undefined] : [trimmed.slice(0, i), trimmed.slice(i + 1)];
    return new StrategyArgs(text, name.toLowerCase(), rest);
  }

  fail(why: string): never {
    throw new Error(`strategy '${this.text}': ${why}`);
  }

  has(key: string): boolean {
    return this.entries.some((e) => e.key === key && e.value !== undefined);
  }

  /** Removes and returns `key`'s value (the last one given wins), or undefined when absent. */
  take(key: string): string | undefined {
    let value: string | undefined;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.key !== key || e.value === undefined) continue;
      value ??= e.value;
      this.entries.splice(i, 1);
    }
    return value;
  }

  /** Removes and returns the first bare word (a parameter without `=`), if any. */
  takeBare(): string | undefined {
    const i = this.entries.findIndex((e) => e.value === undefined);
    return i < 0 ? undefined : this.entries.splice(i, 1)[0].key;
  }

  /** Removes a bare word if it is one of `words`. */
  takeWord(words: readonly string[]): string | undefined {
    const i = this.entries.findIndex((e) => e.value === undefined && words.includes(e.key));
    return i < 0 ? undefined : this.entries.splice(i, 1)[0].key;
  }

  /** What no module took, in the order given. */
  remaining(): { key: string; value: string | undefined }[] {
    return this.entries.splice(0);
  }

  number(key: string, value: string, min = -Infinity): number {
    const n = Number(value);
    if (value === '' || !Number.isFinite(n) || n < min) {
      this.fail(`${key} must be a number${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`);
    }
    return n;
  }

  whole(key: string, value: string, min: number): number {
    const n = Number(value);
    if (value === '' || !Number.isInteger(n) || n < min)
      this.fail(`${key} must be a whole number >= ${min}, got '${value}'`);
    return n;
  }
}
