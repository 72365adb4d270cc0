/** HTTP requests to the coordinator signed with the node's enrolled key (see core/request-auth.ts). */
import { randomBytes } from 'node:crypto';
import { canonicalBody, signRequestHeaders } from '../core/request-auth.js';
import { randomNonce } from '../core/identity.js';
import { nodeCrypto } from '../net/node-crypto.js';

export interface NodeCredentials {
  name: string;
  secretKey: Uint8Array;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** GET (no body) or POST (JSON body); throws HttpError on a non-2xx answer, with the server's error code. */
export async function signedFetch(
  base: string,
  path: string,
  creds: NodeCredentials,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<Response> {
  const method = body === undefined ? 'GET' : 'POST';
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = {
    ...signRequestHeaders(
      {
        name: creds.name,
        timestamp: Date.now(),
        nonce: randomNonce((n) => new Uint8Array(randomBytes(n))),
        method,
        path,
        body: canonicalBody(body),
      },
      creds.secretKey,
      nodeCrypto,
    ),
    ...(text !== undefined ? { 'content-type': 'application/json' } : {}),
  };
  const r = await fetch(new URL(path, base), { method, headers, body: text, signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) {
    const e = (await r.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    throw new HttpError(
      r.status,
      e.error?.code ?? 'http_error',
      `${method} ${path}: HTTP ${r.status} ${e.error?.message ?? ''}`.trim(),
    );
  }
  return r;
}
