/**
 * An example run config with every field commented, generated from the run config's JSON Schema (so it cannot
 * drift from what the coordinator accepts): each field with its description, allowed values and default; fields
 * without a default are shown commented out. `edgefed schema run --example` prints it; deploy/ keeps a copy.
 */
type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
};

function allowed(schema: JsonSchema): string {
  if (schema.enum) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  const type = Array.isArray(schema.type)
    ? schema.type.join(' | ')
    : (schema.type ?? (schema.anyOf ? schema.anyOf.map(allowed).join(' | ') : 'any'));
  const lo =
    schema.minimum !== undefined
      ? `>= ${schema.minimum}`
      : schema.exclusiveMinimum !== undefined
        ? `> ${schema.exclusiveMinimum}`
        : '';
  const hi =
    schema.maximum !== undefined
      ? `<= ${schema.maximum}`
      : schema.exclusiveMaximum !== undefined
        ? `< ${schema.exclusiveMaximum}`
        : '';
  return [type, [lo, hi].filter(Boolean).join(' and ')].filter(Boolean).join(', ');
}

/** A placeholder value for a field with no default, valid for its type. */
function placeholder(schema: JsonSchema): unknown {
  if (schema.enum) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === 'integer' || type === 'number')
    return schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 1);
  if (type === 'boolean') return false;
  if (type === 'object') return {};
  return '';
}

export function exampleRunConfig(schema: JsonSchema, title: string): string {
  const lines = [
    `// ${title}`,
    '// Generated from the run config schema (edgefed schema run --example): every field, its default, what it accepts.',
    '{',
  ];
  const entries = Object.entries(schema.properties ?? {});
  entries.forEach(([key, field], i) => {
    const comma = i < entries.length - 1 ? ',' : '';
    for (const text of [field.description, `accepts: ${allowed(field)}`].filter((t): t is string => !!t))
      lines.push(`  // ${text}`);
    const object = field.properties ? field : field.anyOf?.find((f) => f.properties);
    for (const [name, sub] of Object.entries(object?.properties ?? {})) {
      const preset = sub.default !== undefined ? `; default ${JSON.stringify(sub.default)}` : '';
      lines.push(`  //   ${name}: ${sub.description ?? ''} (${allowed(sub)}${preset})`);
    }
    if (field.default !== undefined) lines.push(`  ${JSON.stringify(key)}: ${JSON.stringify(field.default)}${comma}`);
    else
      lines.push(`  // ${JSON.stringify(key)}: ${JSON.stringify(placeholder(field))}${comma}   (optional, no default)`);
  });
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The JSON of a JSONC text: line comments removed (strings in this example never contain //). */
export function stripLineComments(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/^\s*\/\/.*$/, ''))
    .join('\n')
    .replace(/,(\s*})/g, '$1');
}
