/** Flag parsers that reject bad values with a one-line reason (commander reports them, exit code 2). */
import { InvalidArgumentError } from 'commander';

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got '${v}'`);
    return n;
  };
}

export function floatArg(min: number, max: number, minExclusive = false) {
  return (v: string): number => {
    const n = Number(v);
    const low = minExclusive ? n <= min : n < min;
    if (v.trim() === '' || !Number.isFinite(n) || low || n > max)
      throw new InvalidArgumentError(`expected a number ${minExclusive ? '>' : '>='} ${min} and <= ${max}, got '${v}'`);
    return n;
  };
}

/** An error from bad input (flags, files): reported on one line with exit code 2. */
/** A commander option parser that accepts only one of `values`. */
export function choiceArg(values: readonly string[]): (v: string) => string {
  return (v) => {
    if (!values.includes(v)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}, got '${v}'`);
    return v;
  };
}

export class UsageError extends Error {}
