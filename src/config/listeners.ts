import type { Findings } from './findings.ts';

/** The ports as the file and the environment give them, before they are merged. */
export interface ListenerSettings {
  port: { file: number; env: number | undefined };
  management: { port: number | undefined; envPort: number | undefined; host: string | undefined };
}

/**
 * The management listener (config `management`, env MANAGEMENT_PORT) beside the main one. Its port
 * must be its own: on the main port it would either fail to bind or, on another interface, split
 * one port between the public application and the private metrics, which is what it exists to
 * avoid. A host without a port is refused too: the operator meant to move /metrics off the public
 * port, and nothing would move. Each problem names where its value came from (file or environment).
 */
export function checkManagementListener(
  settings: ListenerSettings,
  findings: Findings,
  production = false,
): void {
  const { management } = settings;
  const managementPort = management.envPort ?? management.port;
  const mainPort = settings.port.env ?? settings.port.file;
  const field = management.envPort === undefined ? 'management.port' : 'MANAGEMENT_PORT';
  if (managementPort === mainPort) {
    const main = settings.port.env === undefined ? 'port' : 'PORT';
    findings.problem(
      field,
      `must differ from the main port (${main}, ${mainPort}): the management listener serves ` +
        '/metrics on a port of its own, which is never published',
    );
  }
  // Allowed, for a single machine whose proxy keeps /metrics in, but said at every start: the
  // per-route traffic, login counts and WeChat errors are otherwise anyone's to read.
  if (production && managementPort === undefined && management.host === undefined) {
    findings.warn(
      'management.port',
      'not set: /metrics is served on the public port to anyone who asks; give it a port of its own ' +
        '(management.port or MANAGEMENT_PORT), or keep /metrics from the internet at the proxy',
    );
  }
  if (managementPort === undefined && management.host !== undefined) {
    findings.problem(
      'management.host',
      'needs management.port (or MANAGEMENT_PORT): without a port there is no management listener, ' +
        'and /metrics stays on the main port',
    );
  }
}
