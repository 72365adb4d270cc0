/**
 * The read token a page uses for the coordinator's API. `edgefed up` prints the dashboard URL with the
 * token in the fragment (`#token=...`): fragments are never sent to a server, and the page moves it into
 * sessionStorage at once and drops it from the address bar, so it is neither logged nor bookmarked.
 * Fetches send it as a bearer header; the live feed offers it as a WebSocket subprotocol.
 */
const KEY = 'edgefed.readToken';

function adopt(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

const token = adopt();

export const authHeaders = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** The live feed's subprotocols: `edgefed-live`, and the token beside it when the page has one. */
export const liveProtocols = (): string[] => (token ? ['edgefed-live', `edgefed-token.${token}`] : ['edgefed-live']);
