/**
 * A value from untrusted JSON as text for an error message or a record. String() of an object whose `toString` is
 * not a function (a header may say `"round": {"toString": false}`) throws a TypeError, which would escape where a
 * clear refusal was meant; objects are shown as (at most 100 characters of) their JSON instead.
 */
export function shown(value: unknown): string {
  return value !== null && typeof value === 'object' ? JSON.stringify(value).slice(0, 100) : String(value);
}
