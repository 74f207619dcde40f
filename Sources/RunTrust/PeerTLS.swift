import Crypto
import NIOCore
import NIOSSL
import X509

/// A worker's TLS identity on ring connections: its key (made in the process, never sent), the
/// certificate the coordinator issued for it at join, and the run's authority as the only root
/// it trusts. Both ends present certificates (mutual TLS), so a connection exists only between
/// two admitted workers, and the name each proved is what its hello must claim.
public struct PeerTLS: Sendable {
    public let serverContext: NIOSSLContext
    public let clientContext: NIOSSLContext
    /// The longest a closing link waits for its peer's TLS close_notify: one round trip on any link.
    static let shutdownTimeout = TimeAmount.milliseconds(500)

    public init(certificatePEM: String, key: WorkerKey, authorityPEM: String) throws {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map(NIOSSLCertificateSource.certificate)
            let root = try NIOSSLCertificate.fromPEMBytes(Array(authorityPEM.utf8))
            let privateKey = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: Array(key.pem.utf8), format: .pem))
            guard !chain.isEmpty, !root.isEmpty else { throw TrustError("no certificate in the PEM text") }
            // Peers are dialed by address, not by name: the name is checked against the hello instead.
            var server = TLSConfiguration.makeServerConfigurationWithMTLS(certificateChain: chain, privateKey: privateKey,
                                                                          trustRoots: .certificates(root))
            server.minimumTLSVersion = .tlsv13
            var client = TLSConfiguration.makeClientConfiguration()
            client.minimumTLSVersion = .tlsv13
            // A link's own goodbye frame ends its conversation; TLS's close_notify only waits for the
            // peer's, which a frozen peer never sends (NIOSSL's default: 5 s of every ring closed around one).
            server.shutdownTimeout = Self.shutdownTimeout
            client.shutdownTimeout = Self.shutdownTimeout
            client.certificateChain = chain
            client.privateKey = privateKey
            client.trustRoots = .certificates(root)
            client.certificateVerification = .noHostnameVerification
            serverContext = try NIOSSLContext(configuration: server)
            clientContext = try NIOSSLContext(configuration: client)
        } catch let error as TrustError {
            throw error
        } catch {
            throw TrustError("cannot set up TLS for the ring with the certificate the coordinator issued: \(error)")
        }
    }

    /// The worker name a peer's certificate was issued to (its common name).
    public static func name(of certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
        return RunAuthority.commonName(of: parsed)
    }
}

/// A worker's private key for its ring certificate, made fresh in every worker process.
public struct WorkerKey: Sendable {
    let key: P256.Signing.PrivateKey

    public init() { key = P256.Signing.PrivateKey() }

    /// The public half, PEM, as sent in the join request.
    public var publicKeyPEM: String { key.publicKey.pemRepresentation }
    var pem: String { key.pemRepresentation }
}

/// How a client trusts the coordinator's HTTPS server: the run's authority as the only root, and
/// the coordinator's name in the certificate (which no worker certificate carries).
public struct CoordinatorTrust: Sendable {
    public let context: NIOSSLContext
    public let serverName = RunAuthority.coordinatorHostname
    /// The authority's certificate, PEM (what issued worker certificates chain to).
    public let authorityPEM: String

    public init(authorityPEM: String) throws {
        let roots: [NIOSSLCertificate]
        do { roots = try NIOSSLCertificate.fromPEMBytes(Array(authorityPEM.utf8)) } catch {
            throw TrustError("the run's authority certificate is not PEM: \(error)")
        }
        guard !roots.isEmpty else { throw TrustError("no certificate in the run's authority PEM") }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(roots)
        do { context = try NIOSSLContext(configuration: configuration) } catch {
            throw TrustError("cannot set up TLS to the coordinator: \(error)")
        }
        self.authorityPEM = authorityPEM
    }

    /// Trust that verifies nothing: only for fetching the authority's certificate, which the caller
    /// then checks against a fingerprint it got another way (`--ca-hash`).
    public static func unverified() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }

    /// The fingerprint (`sha256:…`) of the first certificate in `pem`.
    public static func fingerprint(ofPEM pem: String) throws -> String {
        do { return RunAuthority.fingerprint(of: try Certificate(pemEncoded: pem)) } catch {
            throw TrustError("not a PEM certificate: \(error)")
        }
    }
}

extension RunAuthority {
    /// The coordinator's HTTPS server settings: a fresh key and certificate from this authority,
    /// sent with the authority's own certificate.
    public func serverConfiguration() throws -> TLSConfiguration {
        let (certificate, key) = try issueCoordinatorIdentity()
        do {
            let chain = try [certificate, self.certificate].map {
                NIOSSLCertificateSource.certificate(try NIOSSLCertificate(bytes: Array(try $0.serializeAsPEM().pemString.utf8), format: .pem))
            }
            let privateKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch {
            throw TrustError("cannot set up the coordinator's TLS: \(error)")
        }
    }
}
