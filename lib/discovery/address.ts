/**
 * Backend addresses as anchorpool accepts them: `host:port` (hostname or IPv4),
 * `[v6]:port` and `unix:/path`. A port is required, since a Go client given a bare
 * host would fail to dial it too. Parsing returns a value or a reason, never throws.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type ParsedAddress =
  | { kind: 'tcp'; host: string; port: number; address: string }
  | { kind: 'unix'; path: string; address: string };

export type AddressResult = { ok: true; value: ParsedAddress } | { ok: false; reason: string };

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const DIGITS = /^[0-9]+$/;
const MAX_ADDRESS_LENGTH = 1024;

function fail(reason: string): AddressResult {
  return { ok: false, reason };
}

function parsePort(text: string, address: string): number | string {
  if (text === '') return `missing port in ${JSON.stringify(address)}`;
  if (!DIGITS.test(text)) return `port ${JSON.stringify(text)} is not a number in ${JSON.stringify(address)}`;
  const port = Number(text);
  if (port < 1 || port > 65535) return `port ${text} is out of range 1-65535 in ${JSON.stringify(address)}`;
  return port;
}

function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  if (!labels.every((label) => HOST_LABEL.test(label))) return false;
  // All-numeric dotted names must be real IPv4 addresses (999.1.1.1 is not a hostname).
  return !labels.every((label) => DIGITS.test(label));
}

export function parseAddress(input: string): AddressResult {
  const address = input;
  if (address.length === 0) return fail('address is empty');
  if (address.length > MAX_ADDRESS_LENGTH) return fail(`address is longer than ${MAX_ADDRESS_LENGTH} characters`);
  if (/[\s\u0000]/.test(address)) return fail(`address ${JSON.stringify(address)} contains whitespace or NUL`);

  if (address.startsWith('unix:')) {
    // grpc accepts unix:relative, unix:/abs and unix:///abs.
    const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address.slice('unix:'.length);
    if (path.length === 0) return fail(`unix address ${JSON.stringify(address)} has no path`);
    return { ok: true, value: { kind: 'unix', path, address } };
  }

  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close === -1) return fail(`unclosed "[" in ${JSON.stringify(address)}`);
    host = address.slice(1, close);
    if (!isIPv6(host)) return fail(`${JSON.stringify(host)} in brackets is not an IPv6 address`);
    if (address[close + 1] !== ':') return fail(`missing port in ${JSON.stringify(address)}`);
    portText = address.slice(close + 2);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon === -1) return fail(`missing port in ${JSON.stringify(address)} (expected host:port)`);
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host.includes(':')) {
      return fail(`IPv6 address must be in brackets, as in "[::1]:50051", got ${JSON.stringify(address)}`);
    }
    if (host.length === 0) return fail(`missing host in ${JSON.stringify(address)}`);
    if (!isIPv4(host) && !isHostname(host)) return fail(`${JSON.stringify(host)} is not a valid hostname or IPv4 address`);
  }
  const port = parsePort(portText, address);
  if (typeof port === 'string') return fail(port);
  return { ok: true, value: { kind: 'tcp', host, port, address } };
}
