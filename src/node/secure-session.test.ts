// The node side of secure aggregation: identity required, one session per round, refusals named by reason.
// Three virtual nodes on one SecureNodeSessions talk to a real SecAggServer through frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecAggServer } from '../core/secagg/protocol.js';
import { clientIdOf, decodeSecAggFrame, encodeSecAggFrame } from '../engine/secure-messages.js';
import { simulationIdentities } from '../sim/sim-host.js';
import { SecureNodeSessions } from './secure-session.js';

const NODES = [0, 1, 2];
const settings = (session: string, nodeId: number) => ({
  session,
  clientId: clientIdOf(nodeId),
  threshold: 2,
  scaleBits: 16,
  clip: 1,
  maxWeight: 10,
  maxClients: 3,
});
const global = new Float32Array(4);
const trained = Float32Array.from([0.1, -0.2, 0.3, 0]);
const metrics = { loss: 1, accuracy: 0.5 };

/** Advertises and shares keys for every node in `session` of `round`; returns the server past ShareKeys. */
function shareKeys(nodes: SecureNodeSessions, round: number, session: string): SecAggServer {
  const server = new SecAggServer({ session, threshold: 2, vectorLength: 5, consistencyCheck: true });
  for (const n of NODES)
    server.receiveAdvertiseKeys(
      decodeSecAggFrame(nodes.start(round, n, settings(session, n), global, trained, 5, metrics)).msg as never,
    );
  const roster = server.finishAdvertiseKeys();
  for (const n of NODES)
    server.receiveShareKeys(decodeSecAggFrame(nodes.handle(encodeSecAggFrame(roster, round, n))).msg as never);
  return server;
}

test('a node without an identity key refuses to take part', () => {
  const nodes = new SecureNodeSessions();
  assert.throws(
    () => nodes.start(1, 0, settings('s', 0), global, trained, 5, metrics),
    /refused \(no_identity\): node 0 has no identity key/,
  );
});

test('after sharing keys for a round, a node refuses another session for that round, not for the next', () => {
  const nodes = new SecureNodeSessions({ identity: simulationIdentities(3, 3) });
  shareKeys(nodes, 7, 'first');
  for (const n of NODES) {
    assert.throws(
      () => nodes.start(7, n, settings('second', n), global, trained, 5, metrics),
      /refused \(second_session\): node \d already shared its keys for round 7/,
    );
  }
  shareKeys(nodes, 8, 'next');
});

test('a session that ended before keys were shared does not count: the round can be retried', () => {
  const nodes = new SecureNodeSessions({ identity: simulationIdentities(3, 3) });
  for (const n of NODES) nodes.start(4, n, settings('aborted', n), global, trained, 5, metrics);
  shareKeys(nodes, 4, 'retry');
});

test('a protocol refusal names its code; the session is closed afterwards', () => {
  const nodes = new SecureNodeSessions({ identity: simulationIdentities(3, 3) });
  const server = new SecAggServer({ session: 's', threshold: 2, vectorLength: 5, consistencyCheck: true });
  for (const n of NODES)
    server.receiveAdvertiseKeys(
      decodeSecAggFrame(nodes.start(2, n, settings('s', n), global, trained, 5, metrics)).msg as never,
    );
  const roster = server.finishAdvertiseKeys();
  const stripped = { ...roster, clients: roster.clients.map(({ signature: _s, ...k }) => k) };
  assert.throws(
    () => nodes.handle(encodeSecAggFrame(stripped, 2, 0)),
    /secure aggregation refused \(bad_signature\): .*not signed/,
  );
  assert.throws(
    () => nodes.handle(encodeSecAggFrame(roster, 2, 0)),
    /node 0 has no open secure-aggregation session for round 2/,
  );
});
