/** Turning class probabilities into decisions: the predicted class, its confidence, accept or abstain. */
export type Decision = 'accept' | 'abstain';

export interface Prediction {
  class: number;
  confidence: number;
  decision: Decision;
}

export function decide(probs: Float32Array, numClasses: number, threshold: number): Prediction[] {
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`threshold must be in [0, 1], got ${threshold}`);
  if (numClasses < 1 || probs.length % numClasses !== 0)
    throw new Error(`${probs.length} probabilities do not split into rows of ${numClasses}`);
  const out: Prediction[] = [];
  for (let i = 0; i < probs.length / numClasses; i++) {
    let best = 0;
    for (let j = 1; j < numClasses; j++) if (probs[i * numClasses + j] > probs[i * numClasses + best]) best = j;
    const confidence = probs[i * numClasses + best];
    out.push({ class: best, confidence, decision: confidence >= threshold ? 'accept' : 'abstain' });
  }
  return out;
}

export interface DecisionSummary {
  n: number;
  accepted: number;
  abstained: number;
  /** Accuracy over all examples, and over the accepted ones only (when labels are known). */
  accuracy?: number;
  acceptedAccuracy?: number;
}

export function summarizeDecisions(preds: readonly Prediction[], labels?: ArrayLike<number>): DecisionSummary {
  const accepted = preds.filter((p) => p.decision === 'accept');
  const summary: DecisionSummary = {
    n: preds.length,
    accepted: accepted.length,
    abstained: preds.length - accepted.length,
  };
  if (labels) {
    let correct = 0;
    let acceptedCorrect = 0;
    preds.forEach((p, i) => {
      if (p.class === labels[i]) {
        correct++;
        if (p.decision === 'accept') acceptedCorrect++;
      }
    });
    summary.accuracy = preds.length ? correct / preds.length : NaN;
    summary.acceptedAccuracy = accepted.length ? acceptedCorrect / accepted.length : NaN;
  }
  return summary;
}
