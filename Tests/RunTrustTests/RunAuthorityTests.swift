import Crypto
import Foundation
import RunTrust
import X509
import XCTest

/// The run's certificate authority: what it saves, what it issues, what it refuses.
final class RunAuthorityTests: XCTestCase {
    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("run-trust-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testTheAuthorityIsSavedOnceWithAPrivateKeyAndReadBack() throws {
        let dir = try folder()
        let first = try RunAuthority.loadOrCreate(folder: dir, runName: "r")
        let again = try RunAuthority.loadOrCreate(folder: dir, runName: "r")
        XCTAssertEqual(first.fingerprint, again.fingerprint, "a restarted coordinator keeps the run's authority")
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(RunAuthority.keyFile).path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        // A damaged key is an error that names the files and the way out, not a new authority.
        try "garbage".write(to: dir.appendingPathComponent(RunAuthority.keyFile), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunAuthority.loadOrCreate(folder: dir, runName: "r")) { error in
            XCTAssertTrue("\(error)".contains("move both away"), "\(error)")
        }
    }

    /// The fingerprint workers pin is the SHA-256 of the certificate's DER, as OpenSSL computes it.
    func testTheFingerprintIsOpenSSLs() throws {
        let openssl = URL(fileURLWithPath: "/usr/bin/openssl")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: openssl.path), "openssl is not installed")
        let dir = try folder()
        let authority = try RunAuthority.loadOrCreate(folder: dir, runName: "r")
        let process = Process()
        process.executableURL = openssl
        process.arguments = ["x509", "-noout", "-fingerprint", "-sha256", "-in", dir.appendingPathComponent(RunAuthority.certificateFile).path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let hex = try XCTUnwrap(text.split(separator: "=").last).replacingOccurrences(of: ":", with: "")
            .trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        XCTAssertEqual(authority.fingerprint, "sha256:" + hex)
    }

    func testAWorkerCertificateNamesTheWorkerAndIsSignedByTheAuthority() throws {
        let authority = try RunAuthority.create(runName: "r")
        let key = WorkerKey()
        let certificate = try authority.issueWorkerCertificate(name: "gpu-box-3", publicKeyPEM: key.publicKeyPEM)
        XCTAssertEqual(RunAuthority.commonName(of: certificate), "gpu-box-3")
        XCTAssertEqual(certificate.issuer, authority.certificate.subject)
        XCTAssertTrue(authority.certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
        XCTAssertEqual(try certificate.extensions.basicConstraints, .notCertificateAuthority)
        XCTAssertNil(try certificate.extensions.subjectAlternativeNames, "no DNS name: a worker cannot pose as the coordinator")
        // The coordinator's certificate carries the name clients check.
        let (server, _) = try authority.issueCoordinatorIdentity()
        XCTAssertEqual(try server.extensions.subjectAlternativeNames?.first, .dnsName(RunAuthority.coordinatorHostname))
    }

    func testKeysThatCannotBeCertifiedAreRefusedWithTheReason() throws {
        let authority = try RunAuthority.create(runName: "r")
        for (pem, reason) in [("hello", "not a PEM public key"), (P384.Signing.PrivateKey().publicKey.pemRepresentation, "P-256"),
                              (String(repeating: "A", count: 5000), "over 4096 bytes")] {
            XCTAssertThrowsError(try authority.issueWorkerCertificate(name: "w", publicKeyPEM: pem)) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(error)")
            }
        }
    }
}
