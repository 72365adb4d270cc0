/**
 * Names why a node's part in a round failed, from the failure text the engine and network transport
 * record. Pure (the dashboard imports it too), so /metrics labels and the round timeline agree.
 */
export type FailureKind = 'straggler' | 'error';

/** A node still working when the round closed, or past its deadline, is a straggler; anything else failed. */
export function failureKind(error: string): FailureKind {
  return error.startsWith('straggler') || error.startsWith('deadline of ') ? 'straggler' : 'error';
}
