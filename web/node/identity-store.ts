/**
 * The browser node's Ed25519 identity, kept in localStorage per coordinator and node name, with whether
 * it has been enrolled (a join token is single-use: a reloaded page reconnects with the enrolled key).
 */
import { fromHex, newIdentity, toHex } from '../../src/core/identity.js';

export interface StoredIdentity {
  secretKey: Uint8Array;
  enrolled: boolean;
}

const storageKey = (coordinator: string, name: string) =>
  `edgefed-node-identity:${new URL(coordinator).origin}:${name}`;

/** The stored identity, or a fresh one (stored, not yet enrolled). A corrupt entry is replaced. */
export function loadIdentity(storage: Storage, coordinator: string, name: string): StoredIdentity {
  const raw = storage.getItem(storageKey(coordinator, name));
  if (raw) {
    try {
      const v = JSON.parse(raw) as { secretKey?: string; enrolled?: boolean };
      return { secretKey: fromHex(String(v.secretKey), 32, 'stored secret key'), enrolled: v.enrolled === true };
    } catch {
      // Unreadable: a new identity below (it will need a new join token).
    }
  }
  const fresh = { secretKey: newIdentity().secretKey, enrolled: false };
  saveIdentity(storage, coordinator, name, fresh);
  return fresh;
}

export function saveIdentity(storage: Storage, coordinator: string, name: string, id: StoredIdentity): void {
  storage.setItem(
    storageKey(coordinator, name),
    JSON.stringify({ secretKey: toHex(id.secretKey), enrolled: id.enrolled }),
  );
}
