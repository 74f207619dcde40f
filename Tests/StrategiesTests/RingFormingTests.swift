import Collectives
import Foundation
import NIOPosix
import Strategies
import TestSupport
import Transport
import Wire
import XCTest

/// A worker forming a ring stops as soon as the coordinator drops one of the ring's members, instead
/// of dialing or awaiting it for the handshake timeout or its patience (in a chaos run a killed or
/// frozen member held a forming ring for 6–20 s after the coordinator had dropped it).
final class RingFormingTests: XCTestCase {
    func testFormingStopsWhenTheCoordinatorDropsAMember() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let frozen = try FrozenPeer()
        var options = PeerLink.Options(local: Hello(runID: 7, layoutHash: 0xAA, vectorLength: 100, rank: 0, name: "w0"))
        options.local.ringEpoch = 4
        options.handshakeTimeout = .seconds(20)
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: options, group: group)
        let peers = [(host: "127.0.0.1", port: listener.port), (host: "127.0.0.1", port: frozen.port)], dialing = options
        let dropped = Date().addingTimeInterval(0.5)
        let started = ContinuousClock.now
        do {
            let ring = try await WorkerSession.formUnlessOvertaken {
                Date() >= dropped ? "the coordinator dropped w1 (ring epoch 5)" : nil
            } form: {
                try await Ring.form(rank: 0, peers: peers, names: ["w0", "w1"], listener: listener, options: dialing, group: group,
                                    runID: 7, patience: .seconds(30))
            }
            XCTFail("a ring formed with a frozen peer: \(ring)")
        } catch let failure as RingFailure {
            XCTAssertEqual(failure.kind, .newerRing)
            XCTAssertTrue(failure.detail.contains("dropped w1"), "\(failure)")
        }
        // The dial's handshake (20 s) and the accept (30 s) were both given up at once.
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(3))
        withExtendedLifetime(frozen) {}
        // The listener still serves the next ring.
        var next = options
        (next.local.rank, next.local.name, next.local.ringEpoch) = (1, "w1", 5)
        async let accepted = listener.accept(ringEpoch: 5, timeout: .seconds(5))
        let dialed = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: next, group: group)
        let link = try await accepted
        XCTAssertEqual(link.peer.name, "w1")
        await dialed.close()
        await link.close()
        await listener.close()
    }
}
