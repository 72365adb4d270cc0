/**
 * The few HTTP calls of a Node.js edge node (enrolment, the bandwidth probe) over node:http and node:https,
 * as a small subset of fetch. Why not the global fetch: Node's fetch is undici, whose HTTP parser is
 * WebAssembly; after its first responses V8 recompiles that parser with its optimizing tier on a background
 * thread, a transient of about 25 MB RSS, on top of undici's own JavaScript. Measured on a node training the
 * GRU (bench/node-memory.ts) that transient was the process's peak. node:http parses with the llhttp built
 * into the node binary.
 */
import type { IncomingMessage, RequestOptions } from 'node:http';
import type { HttpInit, HttpResponse } from './platform.js';

/** A request to url; the response body is read whole before the promise settles. No redirects, no pooling. */
export async function nodeHttpFetch(url: URL, init: HttpInit = {}): Promise<HttpResponse> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`${url.href}: expected an http: or https: URL`);
  // node:https (and with it node:tls) is loaded only by nodes that talk to an https coordinator.
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const body = init.body === undefined ? undefined : Buffer.from(init.body, 'utf8');
  const options: RequestOptions = {
    method: init.method ?? 'GET',
    headers: { ...init.headers, ...(body ? { 'content-length': String(body.byteLength) } : {}) },
    agent: false,
  };
  const { status, bytes } = await new Promise<{ status: number; bytes: Buffer }>((resolve, reject) => {
    const req = request(url, options, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', (e) => reject(new Error(`${init.method ?? 'GET'} ${url.href}: ${e.message}`)));
    req.end(body);
  });
  return {
    status,
    json: async () => JSON.parse(bytes.toString('utf8')) as unknown,
    arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  };
}
