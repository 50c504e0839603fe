// The root CA the device trusts: PEM in certs/, DER on the device (Espruino's mbedtls
// rejects PEM): a Storage file on Espruino, a resource on Moddable, never inside the
// JavaScript image. A malformed file stops the build.

import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "./boards.ts";

export interface CaCertificate {
  der: Buffer;
  subject: string;
  validTo: string;
}

export function pemToDer(pem: string, file: string): CaCertificate {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new ConfigError(file + ": no PEM certificate (expected -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
  const rest = pem.slice((match.index ?? 0) + match[0].length);
  if (rest.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(file + ": holds more than one certificate; keep only the root CA the server chains to");
  }
  const der = Buffer.from(match[1].replace(/\s+/g, ""), "base64");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    throw new ConfigError(file + ": the PEM body is not a valid X.509 certificate (" + (e as Error).message + ")");
  }
  if (!cert.ca) throw new ConfigError(file + ": \"" + cert.subject.replace(/\n/g, ", ") + "\" is not a CA certificate; use the root CA the server's chain ends in");
  return { der, subject: cert.subject.replace(/\n/g, ", "), validTo: cert.validTo };
}

export function loadCa(path: string, displayName = path): CaCertificate {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(displayName + ": cannot read the CA file (" + (e as Error).message + ")");
  }
  return pemToDer(pem, displayName);
}

/** The root CA (DER) written beside an Espruino image, for Storage: dist/espruino/<board>.ca.der. */
export function caFileFor(imageFile: string): string {
  return imageFile.replace(/\.js$/, "") + ".ca.der";
}
