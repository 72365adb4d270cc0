/**
 * The privacy spent by a DP run, round by round: every round steps the history-aware RDP accountant with
 * that round's own sampling rate (0 for a round that released nothing), so changing rates, skipped rounds
 * and resumed runs all add up to the epsilon of the actual history. Its state rides in the checkpoint.
 */
import { RdpAccountant, type RdpAccountantState } from '../core/rdp.js';

export interface PrivacySpentSoFar {
  epsilon: number;
  delta: number;
  /** Rounds that released a noised model (q > 0). */
  rounds: number;
  /** Rounds accounted, including those with q = 0. */
  accounted: number;
}

export class PrivacyLedger {
  private readonly accountant: RdpAccountant;

  constructor(
    private readonly noiseMultiplier: number,
    private readonly delta: number,
    restore?: RdpAccountantState,
  ) {
    this.accountant = new RdpAccountant(restore);
  }

  /** One round at sampling rate q: q = 0 (nothing released) adds nothing, and resets nothing. */
  recordRound(q: number): void {
    if (!(q >= 0 && q <= 1)) throw new Error(`privacy ledger: a round's sampling rate must be in [0, 1], got ${q}`);
    this.accountant.step(q, this.noiseMultiplier);
  }

  spent(): PrivacySpentSoFar {
    const rounds = this.accountant.history.filter((e) => e.q > 0).reduce((s, e) => s + e.steps, 0);
    return {
      epsilon: this.accountant.getEpsilon(this.delta),
      delta: this.delta,
      rounds,
      accounted: this.accountant.totalSteps,
    };
  }

  state(): RdpAccountantState {
    return this.accountant.state();
  }
}

/** The ledger state from a checkpoint's extra; absent before the first round. */
export function ledgerStateFrom(extra: Record<string, unknown> | undefined): RdpAccountantState | undefined {
  const s = extra?.privacyLedger;
  return s === undefined || s === null ? undefined : (s as RdpAccountantState);
}
