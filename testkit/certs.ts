// Throwaway certificates for the security scenario, made with the system's openssl: a CA,
// a server certificate for IP 127.0.0.1 (used by etcd and by the TLS backends), a client
// certificate for etcd's client-cert auth, and a second CA that signed nothing of ours
// (the "wrong CA" a client may be given). EC P-256 keys: quick to generate, and both Go
// (etcd) and Node accept them.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** A CA that did not sign the server certificate. */
  readonly otherCaFile: string;
  /** Every private key file, for the secret scan. */
  readonly keyFiles: readonly string[];
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  await openssl([
    'req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=anchorpool ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

async function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', key, '-out', csr, '-subj', `/CN=anchorpool-${name}`]);
  await writeFile(ext, extensions);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key };
}

/** Writes the certificates into `dir` (which the caller owns and removes). */
export async function makeCertificates(dir: string): Promise<CertFiles> {
  const [ca, other] = await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'other-ca')]);
  const [server, client] = await Promise.all([
    makeLeaf(dir, 'server', ca, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n'),
    // The CN names no etcd user, so the certificate alone grants nothing once auth is on.
    makeLeaf(dir, 'client', ca, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n'),
  ]);
  return {
    caFile: ca.cert,
    serverCertFile: server.cert,
    serverKeyFile: server.key,
    clientCertFile: client.cert,
    clientKeyFile: client.key,
    otherCaFile: other.cert,
    keyFiles: [ca.key, other.key, server.key, client.key],
  };
}

/** The base64 body lines of PEM private keys: any of them in an output means key material leaked. */
export async function keyMaterialLines(keyFiles: readonly string[]): Promise<string[]> {
  const lines: string[] = [];
  for (const file of keyFiles) {
    const text = await readFile(file, 'utf8');
    for (const line of text.split('\n')) if (line.length >= 16 && !line.startsWith('-----')) lines.push(line.trim());
  }
  return lines;
}
