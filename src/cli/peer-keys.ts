/**
 * `edgefed node --secagg-peers FILE`: the identity public keys of the peers a node will run secure aggregation
 * with, one 64-hex-digit Ed25519 key per line ('#' starts a comment). The file must come from someone other
 * than the coordinator (the fleet operator): it is what stops a malicious coordinator from inventing peers.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './args.js';

export function readPeerKeys(file: string): Uint8Array[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--secagg-peers ${file}: cannot read it (${(e as Error).message})`);
  }
  const keys: Uint8Array[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    if (!/^[0-9a-fA-F]{64}$/.test(line))
      problems.push(`line ${i + 1}: expected 64 hex digits (an Ed25519 public key), got '${line.slice(0, 80)}'`);
    else keys.push(Uint8Array.from(line.match(/../g)!, (h) => parseInt(h, 16)));
  });
  if (problems.length > 0) throw new UsageError(`--secagg-peers ${file}:\n  ${problems.join('\n  ')}`);
  if (keys.length === 0)
    throw new UsageError(`--secagg-peers ${file}: lists no keys; list the peers' public keys, one per line`);
  return keys;
}
