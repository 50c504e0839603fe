// A development CA and a server certificate for 127.0.0.1/localhost, for the embedded
// broker and the tests. RSA keys: Espruino's TLS offers only RSA and DHE-RSA suites.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";

export interface TlsFiles {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
}

function rsaKeys(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), pem };
}

function certificate(
  subjectCn: string,
  publicKey: forge.pki.rsa.PublicKey,
  issuer: forge.pki.Certificate | null,
  signingKey: forge.pki.rsa.PrivateKey,
  isCa: boolean
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = "01" + randomBytes(8).toString("hex");
  cert.validity.notBefore = new Date(Date.now() - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 5 * 365 * 24 * 3600 * 1000);
  const subject = [{ name: "commonName", value: subjectCn }, { name: "organizationName", value: "tb-firmware development" }];
  cert.setSubject(subject);
  cert.setIssuer(issuer ? issuer.subject.attributes : subject);
  // Key identifiers as OpenSSL's CA defaults issue them. Moddable's chain check reads the
  // AKI of every certificate the server sends, mosquitto sends the CA too, and Moddable
  // throws on a certificate without one, so the CA carries its own key id as AKI.
  const extensions: object[] = isCa
    ? [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
        { name: "subjectKeyIdentifier" },
        { name: "authorityKeyIdentifier", keyIdentifier: cert.generateSubjectKeyIdentifier().getBytes() },
      ]
    : [
        { name: "authorityKeyIdentifier", keyIdentifier: issuer!.generateSubjectKeyIdentifier().getBytes() },
        { name: "subjectKeyIdentifier" },
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
        { name: "extKeyUsage", serverAuth: true },
        { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
      ];
  cert.setExtensions(extensions);
  cert.sign(signingKey, forge.md.sha256.create());
  return cert;
}

/** Writes ca.pem, server.pem and server-key.pem into `dir` (made if missing). */
export function createTlsFiles(dir: string, caName = "tb-firmware development CA"): TlsFiles {
  mkdirSync(dir, { recursive: true });
  const caKeys = rsaKeys();
  const ca = certificate(caName, caKeys.publicKey, null, caKeys.privateKey, true);
  const serverKeys = rsaKeys();
  const server = certificate("localhost", serverKeys.publicKey, ca, caKeys.privateKey, false);
  const files: TlsFiles = { dir, caCert: join(dir, "ca.pem"), serverCert: join(dir, "server.pem"), serverKey: join(dir, "server-key.pem") };
  writeFileSync(files.caCert, forge.pki.certificateToPem(ca));
  writeFileSync(files.serverCert, forge.pki.certificateToPem(server));
  writeFileSync(files.serverKey, serverKeys.pem, { mode: 0o600 });
  return files;
}

/** The development CA in `dir`, made on first use. */
export function ensureTlsFiles(dir: string): TlsFiles {
  const files: TlsFiles = { dir, caCert: join(dir, "ca.pem"), serverCert: join(dir, "server.pem"), serverKey: join(dir, "server-key.pem") };
  if (existsSync(files.caCert) && existsSync(files.serverCert) && existsSync(files.serverKey)) {
    // Regenerate when expired, or when made before certificates carried key identifiers.
    const server = forge.pki.certificateFromPem(readFileSync(files.serverCert, "utf8"));
    if (server.validity.notAfter.getTime() > Date.now() + 24 * 3600 * 1000 && forge.pki.certificateFromPem(readFileSync(files.caCert, "utf8")).getExtension("authorityKeyIdentifier")) return files;
  }
  return createTlsFiles(dir);
}
