import Collectives
import Foundation
import NIOCore
import NIOPosix
import RunTrust
import TestSupport
import Transport
import Wire
import XCTest

/// Ring links over mutual TLS with certificates from a run authority, on real loopback sockets:
/// admitted workers link; a plain dialer, a dialer certified by another authority and one that
/// claims a name its certificate does not prove never complete a handshake (issue 17).
final class TLSLinkTests: XCTestCase {
    let group = MultiThreadedEventLoopGroup.singleton
    static let authority = try! RunAuthority.create(runName: "test")

    /// Options of rank `rank` named `name`, certified under `certifiedAs` by `authority`.
    func options(rank: UInt32, name: String, certifiedAs: String? = nil, by authority: RunAuthority = authority) throws -> PeerLink.Options {
        var o = PeerLink.Options(local: Hello(runID: 7, layoutHash: 0xAA, vectorLength: 1000, rank: rank, name: name))
        let key = WorkerKey()
        let certificate = try authority.issueWorkerCertificate(name: certifiedAs ?? name, publicKeyPEM: key.publicKeyPEM)
        o.security = .tls(try PeerTLS(certificatePEM: try certificate.serializeAsPEM().pemString, key: key,
                                      authorityPEM: authority.certificatePEM))
        o.handshakeTimeout = .seconds(3)
        return o
    }

    func testAdmittedWorkersLinkAndTheirFramesArrive() async throws {
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: try options(rank: 1, name: "w1"), group: group)
        async let acceptedLink = listener.accept(timeout: .seconds(10))
        let dialed = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: try options(rank: 0, name: "w0"), group: group)
        let accepted = try await acceptedLink
        XCTAssertEqual(dialed.peer.name, "w1")
        XCTAssertEqual(accepted.peer.name, "w0")
        var payload = ByteBuffer()
        payload.writeBytes((0..<4096).map { UInt8($0 & 0xFF) })
        let frame = Frame(header: FrameHeader(type: .data, codec: .fp32, runID: 7, round: 1, sender: 0, offset: 0, count: 1024), payload: payload)
        try await dialed.send(frame).get()
        let received = try await accepted.receive(timeout: .seconds(5), what: "data")
        XCTAssertEqual(received, frame)
        await dialed.close()
        await accepted.close()
        await listener.close()
    }

    /// What the listener must never hand out: the connection is closed, nothing is accepted.
    func assertNoLink(_ listener: PeerListener, _ dial: () async throws -> PeerLink, expecting: String,
                      file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let link = try await dial()
            XCTFail("a handshake completed with \(link.peer.name)", file: file, line: line)
        } catch {
            XCTAssertTrue("\(error)".contains(expecting), "\(error)", file: file, line: line)
        }
        do {
            let link = try await listener.accept(timeout: .milliseconds(300))
            XCTFail("the listener accepted \(link.peer.name)", file: file, line: line)
        } catch {}
    }

    func testAnUnadmittedDialerNeverCompletesAHandshake() async throws {
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: try options(rank: 1, name: "w1"), group: group)
        defer { Task { await listener.close() } }
        let port = listener.port
        // Plain TCP with the right run id and layout: what an intruder who read them could send.
        var plain = PeerLink.Options(local: Hello(runID: 7, layoutHash: 0xAA, vectorLength: 1000, rank: 0, name: "w0"))
        plain.handshakeTimeout = .seconds(3)
        await assertNoLink(listener, { try await PeerLink.connect(host: "127.0.0.1", port: port, options: plain, group: self.group) },
                           expecting: "closed")
        // A certificate from another authority (another run's, or self-made).
        let other = try RunAuthority.create(runName: "other")
        let stranger = try options(rank: 0, name: "w0", by: other)
        await assertNoLink(listener, { try await PeerLink.connect(host: "127.0.0.1", port: port, options: stranger, group: self.group) },
                           expecting: "TLS handshake failed")
        // An admitted worker that claims to be another: its certificate names it.
        let impostor = try options(rank: 0, name: "w2", certifiedAs: "w0")
        await assertNoLink(listener, { try await PeerLink.connect(host: "127.0.0.1", port: port, options: impostor, group: self.group) },
                           expecting: "certificate was issued to 'w0' but its hello claims to be 'w2'")
    }

    func testADialerRefusesAListenerOfAnotherAuthority() async throws {
        let other = try RunAuthority.create(runName: "other")
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: try options(rank: 1, name: "w1", by: other), group: group)
        defer { Task { await listener.close() } }
        let port = listener.port
        let admitted = try options(rank: 0, name: "w0")
        await assertNoLink(listener, { try await PeerLink.connect(host: "127.0.0.1", port: port, options: admitted, group: self.group) },
                           expecting: "TLS handshake failed")
    }

    /// A worker binds before it joins and gets its certificate with the join reply: a peer that
    /// dials in between waits for it (unread), and is then served, not reset.
    func testAListenerWaitingForItsCertificateServesTheDialerOnceItArrives() async throws {
        var waiting = try options(rank: 1, name: "w1")
        let ready = waiting.security
        waiting.security = .awaitingCertificate
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: waiting, group: group)
        defer { Task { await listener.close() } }
        let port = listener.port
        let dialer = try options(rank: 0, name: "w0")
        let group = self.group
        let dialed = Task { try await PeerLink.connect(host: "127.0.0.1", port: port, options: dialer, group: group) }
        try await Task.sleep(nanoseconds: 300_000_000)
        listener.use(ready)
        let accepted = try await listener.accept(timeout: .seconds(10))
        XCTAssertEqual(accepted.peer.name, "w0")
        let link = try await dialed.value
        XCTAssertEqual(link.peer.name, "w1")
        await link.close()
        await accepted.close()
    }

    /// Another admitted worker (a certificate of this run, but not a member of this ring: one the
    /// coordinator excluded, say) that dials first with the ring's epoch is turned away; the ring
    /// takes in its own members at their places.
    func testARingTakesInOnlyItsMembersNotAnotherAdmittedWorker() async throws {
        var w0 = try options(rank: 0, name: "w0"), w1 = try options(rank: 1, name: "w1")
        var intruder = try options(rank: 0, name: "w9")
        (w0.local.ringEpoch, w1.local.ringEpoch, intruder.local.ringEpoch) = (3, 3, 3)
        let l0 = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: w0, group: group)
        let l1 = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: w1, group: group)
        let peers = [(host: "127.0.0.1", port: l0.port), (host: "127.0.0.1", port: l1.port)]
        let stranger = try await PeerLink.connect(host: "127.0.0.1", port: l1.port, options: intruder, group: group)
        let group = self.group
        async let ring0 = Ring.form(rank: 0, peers: peers, names: ["w0", "w1"], listener: l0, options: w0, group: group, runID: 7,
                                    patience: .seconds(10))
        let ring1 = try await Ring.form(rank: 1, peers: peers, names: ["w0", "w1"], listener: l1, options: w1, group: group, runID: 7,
                                        patience: .seconds(10))
        let formed = try await ring0
        XCTAssertEqual((ring1.previous as? PeerLink)?.peer.name, "w0")
        XCTAssertEqual((formed.previous as? PeerLink)?.peer.name, "w1")
        do {
            _ = try await stranger.receive(timeout: .seconds(5), what: "anything")
            XCTFail("the intruder's link stayed open")
        } catch {
            XCTAssertTrue("\(error)".contains("goodbye") || "\(error)".contains("closed"), "\(error)")
        }
        // Forming with a next rank that answers under another name is refused, naming both.
        let l2 = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: intruder, group: group)
        async let held = l2.accept(ringEpoch: 3, timeout: .seconds(5))
        do {
            _ = try await Ring.form(rank: 1, peers: [(host: "127.0.0.1", port: l2.port), (host: "127.0.0.1", port: l1.port)],
                                   names: ["w0", "w1"], listener: l1, options: w1, group: group, runID: 7, patience: .seconds(2))
            XCTFail("a ring formed with 'w9' in w0's place")
        } catch let failure as RingFailure {
            XCTAssertTrue(failure.detail.contains("rank 0 of this ring is 'w0', not 'w9'"), "\(failure)")
        }
        _ = try? await held
        await formed.close()
        await ring1.close()
        for l in [l0, l1, l2] { await l.close() }
    }

    /// A frozen peer (SIGSTOP): its kernel completes the TCP connection, the process never answers
    /// TLS. The dialer gives up after the handshake timeout, not when the peer wakes (it waited 20 s
    /// for a frozen worker in a chaos run, forming a ring while the coordinator had dropped that worker).
    func testADialerGivesUpOnAPeerThatAcceptsTCPButNeverAnswers() async throws {
        let frozen = try FrozenPeer()
        var dialer = try options(rank: 0, name: "w0")
        dialer.handshakeTimeout = .milliseconds(500)
        let started = ContinuousClock.now
        do {
            let link = try await PeerLink.connect(host: "127.0.0.1", port: frozen.port, options: dialer,
                                                  group: group, patience: .seconds(30))
            XCTFail("a handshake completed with \(link.peer.name)")
        } catch let error as TransportError {
            XCTAssertTrue("\(error)".contains("handshake"), "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        withExtendedLifetime(frozen) {}
    }

    /// Closing a link to a peer that froze after the handshake: TLS's goodbye (close_notify) waits for
    /// the peer's, which never comes. In a chaos run each ring a worker closed around a frozen member
    /// took NIOSSL's default 5 s to close, and the survivor's training waited on it all that time.
    func testClosingALinkToAFrozenPeerDoesNotWaitForItsTLSGoodbye() async throws {
        // The peer runs on an event loop of its own, which the test then blocks: a frozen process.
        let frozenLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: try options(rank: 1, name: "w1"),
                                                   group: frozenLoop)
        async let acceptedLink = listener.accept(timeout: .seconds(10))
        let dialed = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: try options(rank: 0, name: "w0"),
                                                group: group)
        let accepted = try await acceptedLink
        let thaw = DispatchSemaphore(value: 0)
        frozenLoop.next().execute { _ = thaw.wait(timeout: .now() + 20) }
        let started = ContinuousClock.now
        await dialed.close()
        let closing = ContinuousClock.now - started
        thaw.signal()
        XCTAssertLessThan(closing, .seconds(2), "closing waited \(closing) for a frozen peer's TLS goodbye")
        await accepted.close()
        await listener.close()
        try await frozenLoop.shutdownGracefully()
    }
}
