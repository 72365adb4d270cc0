/**
 * One model version as the coordinator lists it (GET /v1/runs/:id/models) and a serving node reads it:
 * shared by both sides, so the node never imports the coordinator's SQLite-backed registry.
 */
export interface ModelVersionInfo {
  version: number;
  round: number;
  sha256: string;
  testAccuracy: number | null;
  createdAt: number;
}
