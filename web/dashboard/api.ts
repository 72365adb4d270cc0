import { authHeaders } from '../shared/read-token.js';

/** The dashboard's REST reads (same origin), with the page's read token. */
export async function getJson<T>(path: string): Promise<T | null> {
  const r = await fetch(path, { headers: { accept: 'application/json', ...authHeaders() } });
  return r.ok ? ((await r.json()) as T) : null;
}

/** Offers text as a file download (the run's records), without a round trip to the server. */
export function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
