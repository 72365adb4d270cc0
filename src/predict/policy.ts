/**
 * Decision policies for served predictions: accept when the top-class confidence reaches the threshold,
 * otherwise abstain or (with escalation) hand the sample to a larger model. Regression outputs are
 * always accepted (there is no confidence to test).
 */
import type { ModelOutput } from './served-model.js';

export type ServedDecision = 'accept' | 'abstain' | 'escalated';

export interface ServedAnswer {
  class?: number;
  confidence?: number;
  value?: number[];
  decision: ServedDecision;
  modelVersion: number | string;
  /** For an escalated sample: what the edge model said before handing it on. */
  edge?: { class: number; confidence: number; modelVersion: number | string };
  /** Set when escalation was wanted but failed: the sample is abstained instead. */
  escalationFailed?: string;
}

export interface PolicyOptions {
  threshold: number;
  escalate: boolean;
}

/** The edge answers, and the indexes of the samples to escalate (below the threshold, with escalation on). */
export function applyPolicy(
  outputs: readonly ModelOutput[],
  modelVersion: number | string,
  policy: PolicyOptions,
): { answers: ServedAnswer[]; escalate: number[] } {
  if (!(policy.threshold >= 0 && policy.threshold <= 1))
    throw new Error(`threshold must be in [0, 1], got ${policy.threshold}`);
  const escalate: number[] = [];
  const answers = outputs.map((output, i): ServedAnswer => {
    if ('value' in output) return { value: output.value, decision: 'accept', modelVersion };
    if (output.confidence >= policy.threshold) return { ...output, decision: 'accept', modelVersion };
    if (policy.escalate) escalate.push(i);
    return { ...output, decision: 'abstain', modelVersion };
  });
  return { answers, escalate };
}

/** Replaces the escalated samples' answers with the larger model's (or marks the failure, keeping abstain). */
export function mergeEscalated(
  answers: ServedAnswer[],
  indexes: readonly number[],
  remote: readonly { class: number; confidence: number; modelVersion: number | string }[] | Error,
): ServedAnswer[] {
  const out = answers.slice();
  indexes.forEach((i, k) => {
    const edge = out[i];
    if (remote instanceof Error) out[i] = { ...edge, escalationFailed: remote.message };
    else
      out[i] = {
        class: remote[k].class,
        confidence: remote[k].confidence,
        decision: 'escalated',
        modelVersion: remote[k].modelVersion,
        edge: { class: edge.class!, confidence: edge.confidence!, modelVersion: edge.modelVersion },
      };
  });
  return out;
}
