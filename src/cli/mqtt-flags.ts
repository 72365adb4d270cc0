/**
 * MQTT flags of `edgefed coordinator` (serve a fleet through a broker, beside the WebSocket port) and of
 * `edgefed node` (reach the coordinator through the broker). The broker password never goes on a command
 * line: `--mqtt-password-file` or $EDGEFED_MQTT_PASSWORD.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { intArg, UsageError } from './args.js';
import { secretFrom } from './secret-flags.js';
import { checkTopicLevel, isMqttUrl } from '../net/mqtt-envelope.js';
import type { CoordinatorOptions } from '../coordinator/server.js';

export const MQTT_PASSWORD_ENV = 'EDGEFED_MQTT_PASSWORD';

export interface CoordinatorMqttFlags {
  mqtt?: string;
  fleet?: string;
  mqttUsername?: string;
  mqttPasswordFile?: string;
  mqttCa?: string;
  mqttChunkBytes?: number;
}

export function addCoordinatorMqttOptions(command: Command): Command {
  return command
    .option('--mqtt <url>', 'also serve nodes through this MQTT broker: mqtt://host:1883 or mqtts://host:8883')
    .option('--fleet <name>', 'with --mqtt: the fleet served (topics edgefed/<fleet>/...)')
    .option('--mqtt-username <user>', 'broker user name (password: --mqtt-password-file or $EDGEFED_MQTT_PASSWORD)')
    .option('--mqtt-password-file <file>', 'read the broker password from this file')
    .option('--mqtt-ca <pem>', 'trust this CA certificate for mqtts')
    .option(
      '--mqtt-chunk-bytes <n>',
      'largest MQTT message sent to nodes (frames above it are chunked; default 262144)',
      intArg(1024, 4 * 1024 * 1024),
    );
}

function brokerUrl(url: string): string {
  if (!isMqttUrl(url)) throw new UsageError(`--mqtt: expected mqtt://host:port or mqtts://host:port, got '${url}'`);
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--mqtt: not a URL: '${url}'`);
  }
  return url;
}

export function coordinatorMqttFromFlags(flags: CoordinatorMqttFlags): CoordinatorOptions['mqtt'] {
  if (!flags.mqtt) {
    if (flags.fleet || flags.mqttUsername || flags.mqttPasswordFile || flags.mqttCa || flags.mqttChunkBytes)
      throw new UsageError('--fleet and the --mqtt-* flags go with --mqtt URL');
    return undefined;
  }
  if (!flags.fleet) throw new UsageError('--mqtt needs --fleet NAME (the topic prefix its nodes use)');
  try {
    checkTopicLevel('--fleet', flags.fleet);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let ca: string | undefined;
  if (flags.mqttCa) {
    try {
      ca = readFileSync(flags.mqttCa, 'utf8');
    } catch (e) {
      throw new UsageError(`--mqtt-ca ${flags.mqttCa}: ${(e as Error).message}`);
    }
  }
  const password = secretFrom(undefined, flags.mqttPasswordFile, MQTT_PASSWORD_ENV, 'mqtt-password');
  return {
    url: brokerUrl(flags.mqtt),
    fleet: flags.fleet,
    ca,
    chunkBytes: flags.mqttChunkBytes,
    ...(flags.mqttUsername !== undefined ? { username: flags.mqttUsername } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

export interface NodeMqttFlags {
  coordinator: string;
  fleet?: string;
  api?: string;
}

export function addNodeMqttOptions(command: Command): Command {
  return command
    .option('--fleet <name>', 'with --coordinator mqtt://broker:port: the fleet (topic prefix) the coordinator serves')
    .option('--api <url>', 'with an MQTT coordinator: its HTTP API (enrolment with a join token, model downloads)');
}

/** The node's link and API: the broker URL carries the user name; the password comes from the environment. */
export function nodeMqttFromFlags(flags: NodeMqttFlags): { coordinator: string; fleet?: string; api?: string } {
  if (!isMqttUrl(flags.coordinator)) {
    if (flags.fleet || flags.api) throw new UsageError('--fleet and --api go with --coordinator mqtt://broker:port');
    return { coordinator: flags.coordinator };
  }
  if (!flags.fleet)
    throw new UsageError('--coordinator mqtt://...: give --fleet NAME (the topic prefix the coordinator serves)');
  try {
    checkTopicLevel('--fleet', flags.fleet);
    if (flags.api) new URL(flags.api);
  } catch (e) {
    throw new UsageError(e instanceof TypeError ? `--api: not a URL: '${flags.api}'` : (e as Error).message);
  }
  const password = process.env[MQTT_PASSWORD_ENV];
  const url = new URL(flags.coordinator);
  if (password && url.username) url.password = encodeURIComponent(password);
  return { coordinator: url.toString(), fleet: flags.fleet, api: flags.api };
}
