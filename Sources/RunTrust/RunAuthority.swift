import Crypto
import Foundation
import SwiftASN1
import X509

/// Why a run's certificates could not be made, read or used.
public struct TrustError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
    public init(_ reason: String) { self.reason = reason }
}

/// The run's own certificate authority: the coordinator makes it once per run folder, keeps its
/// key there (readable by its owner only) and signs with it the coordinator's server certificate
/// and one certificate per admitted worker. Workers trust this authority alone, so a certificate
/// from it is what proves a peer was admitted to this run.
public struct RunAuthority: Sendable {
    /// The DNS name in the coordinator's certificate, which clients check (it is never looked up):
    /// worker certificates carry no DNS name, so an admitted worker cannot pose as the coordinator.
    public static let coordinatorHostname = "coordinator.tributary"
    /// Files in the run folder.
    public static let certificateFile = "run-ca.pem", keyFile = "run-ca-key.pem"
    /// How long issued certificates last: a run rarely outlives it, and a worker gets a new one at every join.
    static let issuedLifetime: TimeInterval = 30 * 86_400

    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// A new authority for `runName`, valid ten years.
    public static func create(runName: String, now: Date = Date()) throws -> RunAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("tributary run CA \(runName.prefix(40))") }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key))
        return RunAuthority(certificate: certificate, key: key)
    }

    /// The authority saved in `folder`, or a new one saved there (key file mode 0600).
    public static func loadOrCreate(folder: URL, runName: String) throws -> RunAuthority {
        let certFile = folder.appendingPathComponent(certificateFile), keyPath = folder.appendingPathComponent(keyFile)
        let manager = FileManager.default
        if manager.fileExists(atPath: certFile.path) || manager.fileExists(atPath: keyPath.path) {
            do {
                let certificate = try Certificate(pemEncoded: try String(contentsOf: certFile, encoding: .utf8))
                let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOf: keyPath, encoding: .utf8))
                guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
                    throw TrustError("the key does not belong to the certificate")
                }
                return RunAuthority(certificate: certificate, key: key)
            } catch {
                throw TrustError("cannot read the run's certificate authority (\(certFile.path), \(keyPath.path)): \(error); "
                    + "restore both files, or move both away to give the run a new authority (every worker must then join again)")
            }
        }
        let authority = try create(runName: runName)
        do {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            // The key is written readable by its owner only, before it holds anything.
            guard manager.createFile(atPath: keyPath.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw TrustError("cannot create \(keyPath.path)")
            }
            try authority.key.pemRepresentation.write(to: keyPath, atomically: false, encoding: .utf8)
            try authority.certificatePEM.write(to: certFile, atomically: true, encoding: .utf8)
        } catch {
            throw TrustError("cannot save the run's certificate authority in \(folder.path): \(error)")
        }
        return authority
    }

    /// The authority's certificate, PEM: what workers are given to trust (it holds no secret).
    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

    /// `sha256:` and the hex SHA-256 of the certificate's DER: what a worker pins with `--ca-hash`.
    public var fingerprint: String { Self.fingerprint(of: certificate) }

    public static func fingerprint(of certificate: Certificate) -> String {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        return "sha256:" + SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02x", $0) }.joined()
    }

    /// A fresh key and certificate for the coordinator's HTTPS server.
    public func issueCoordinatorIdentity(now: Date = Date()) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let certificate = try issue(subject: "tributary coordinator", publicKey: .init(key.publicKey), now: now, usage: try .init {
            SubjectAlternativeNames([.dnsName(Self.coordinatorHostname)])
            try ExtendedKeyUsage([.serverAuth])
        })
        return (certificate, key)
    }

    /// A certificate naming worker `name` for the public key it sent at join (PEM, P-256): it
    /// serves both ends of the worker's ring connections.
    public func issueWorkerCertificate(name: String, publicKeyPEM: String, now: Date = Date()) throws -> Certificate {
        try issue(subject: name, publicKey: try Self.workerPublicKey(pem: publicKeyPEM), now: now, usage: try .init {
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
        })
    }

    /// The public key a worker sent at join, checked: PEM, P-256, at most 4 KiB.
    public static func workerPublicKey(pem: String) throws -> Certificate.PublicKey {
        guard pem.utf8.count <= 4096 else { throw TrustError("the join's public key is over 4096 bytes of PEM") }
        let publicKey: Certificate.PublicKey
        do { publicKey = try Certificate.PublicKey(pemEncoded: pem) } catch {
            throw TrustError("the join's public key is not a PEM public key: \(error)")
        }
        guard P256.Signing.PublicKey(publicKey) != nil else { throw TrustError("the join's public key must be an ECDSA P-256 key") }
        return publicKey
    }

    private func issue(subject: String, publicKey: Certificate.PublicKey, now: Date,
                       usage: Certificate.Extensions) throws -> Certificate {
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            AuthorityKeyIdentifier(keyIdentifier: try? certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        }
        var all = extensions
        for e in usage { try all.append(e) }
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Self.issuedLifetime),
            issuer: certificate.subject, subject: try DistinguishedName { CommonName(subject) },
            signatureAlgorithm: .ecdsaWithSHA256, extensions: all, issuerPrivateKey: .init(key))
    }

    /// The common name a certificate was issued to (a worker's name), if it has one.
    public static func commonName(of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value)
            }
        }
        return nil
    }
}
