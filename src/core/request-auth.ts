/**
 * Signed HTTP requests from enrolled nodes (browser-safe): a node proves it holds its enrolled Ed25519 key
 * when it reads model versions or escalates samples. The signature covers a domain tag distinct from the
 * hello and frame domains (so one can never be replayed as another), the node name, a timestamp, a random
 * nonce, the method, the path and sha256 of the body.
 */
import { fromHex, nobleCrypto, toHex, type CryptoImpl } from './identity.js';

const REQUEST_DOMAIN = 'edgefed-request-v1';
const enc = new TextEncoder();

export const AUTH_HEADERS = {
  node: 'x-edgefed-node',
  timestamp: 'x-edgefed-timestamp',
  nonce: 'x-edgefed-nonce',
  signature: 'x-edgefed-signature',
} as const;

export interface SignedRequestFields {
  name: string;
  timestamp: number;
  nonce: string;
  method: string;
  path: string;
  body: Uint8Array;
}

/** The signed form of a JSON body: its JSON text as JSON.stringify writes it (the server re-serialises the parsed body). */
export const canonicalBody = (body: unknown): Uint8Array =>
  enc.encode(body === undefined || body === null ? '' : JSON.stringify(body));

function requestMessage(r: SignedRequestFields, crypto: CryptoImpl): Uint8Array {
  const bodyHash = toHex(crypto.sha256(r.body));
  return enc.encode(
    `${REQUEST_DOMAIN}|${r.name}|${r.timestamp}|${r.nonce}|${r.method.toUpperCase()}|${r.path}|${bodyHash}`,
  );
}

/** The headers that authenticate this request as coming from the node holding secretKey. */
export function signRequestHeaders(
  r: SignedRequestFields,
  secretKey: Uint8Array,
  crypto: CryptoImpl = nobleCrypto,
): Record<string, string> {
  return {
    [AUTH_HEADERS.node]: r.name,
    [AUTH_HEADERS.timestamp]: String(r.timestamp),
    [AUTH_HEADERS.nonce]: r.nonce,
    [AUTH_HEADERS.signature]: toHex(crypto.sign(requestMessage(r, crypto), secretKey)),
  };
}

export function verifyRequest(
  r: SignedRequestFields,
  signatureHex: string,
  publicKey: Uint8Array,
  crypto: CryptoImpl = nobleCrypto,
): boolean {
  try {
    return crypto.verify(fromHex(signatureHex, 64, 'signature'), requestMessage(r, crypto), publicKey);
  } catch {
    return false;
  }
}
