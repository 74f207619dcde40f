import Dispatch
import Collectives
import NIOCore
import NIOPosix
import Transport
import Wire
import XCTest

/// Real sockets on 127.0.0.1 with port 0, in one process.
final class TCPLinkTests: XCTestCase {
    let group = MultiThreadedEventLoopGroup.singleton

    func options(rank: UInt32, run: UInt64 = 1, layout: UInt64 = 0xAA, link: LinkSpec = .unlimited) -> PeerLink.Options {
        var o = PeerLink.Options(local: Hello(runID: run, layoutHash: layout, vectorLength: 1000, rank: rank, name: "w\(rank)"))
        o.link = link
        return o
    }

    func testHandshakeDataAndProbeOverLoopback() async throws {
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: options(rank: 1), group: group)
        XCTAssertGreaterThan(listener.port, 0)
        async let acceptedLink = listener.accept(timeout: .seconds(10))
        let dialed = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: options(rank: 0), group: group)
        let accepted = try await acceptedLink
        XCTAssertEqual(dialed.peer.rank, 1)
        XCTAssertEqual(accepted.peer.name, "w0")

        var payload = ByteBuffer()
        payload.writeBytes([1, 2, 3, 4, 5, 6, 7, 8])
        let frame = Frame(header: FrameHeader(type: .data, codec: .fp32, runID: 1, round: 3, sender: 0, offset: 10, count: 2), payload: payload)
        try await dialed.send(frame).get()
        let received = try await accepted.receive(timeout: .seconds(5), what: "data")
        XCTAssertEqual(received, frame)

        async let answered: Void = BandwidthProbe.answer(on: accepted, runID: 1, rank: 1)
        let m = try await BandwidthProbe.measure(over: dialed, bytes: 8 << 20, runID: 1, rank: 0)
        try await answered
        XCTAssertGreaterThan(m.bytesPerSecond, 50e6, "loopback should exceed 50 MB/s")
        await dialed.close()
        await accepted.close()
        await listener.close()
    }

    func testPeerOfAnotherRunOrModelIsRefusedWithTheReason() async throws {
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: options(rank: 1), group: group)
        for (bad, expected) in [(options(rank: 0, run: 2), "run id mismatch"), (options(rank: 0, layout: 0xBB), "model layout mismatch")] {
            do {
                _ = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: bad, group: group)
                XCTFail("a mismatched peer was accepted")
            } catch let TransportError.refused(_, reason) {
                XCTAssertTrue(reason.contains(expected), reason)
            }
        }
        await listener.close()
    }

    func testConnectGivesUpWithTheAddress() async throws {
        // Bind and close to get a port with nothing listening.
        let probe = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: options(rank: 1), group: group)
        let port = probe.port
        await probe.close()
        do {
            _ = try await PeerLink.connect(host: "127.0.0.1", port: port, options: options(rank: 0), group: group, patience: .milliseconds(300))
            XCTFail("connected to nothing")
        } catch let TransportError.connectFailed(address, attempts, _) {
            XCTAssertEqual(address, "127.0.0.1:\(port)")
            XCTAssertGreaterThan(attempts, 1)
        }
    }

    func testLinkEmulatorPacesAndDelays() async throws {
        // 8 Mbit/s = 1 MB/s with 50 ms delay: 500 kB should take about 0.55 s to arrive.
        let spec = try LinkSpec(parsing: "8mbit,50ms")
        XCTAssertEqual(spec.bytesPerSecond, 1e6)
        XCTAssertEqual(spec.delaySeconds, 0.05)
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: options(rank: 1), group: group)
        async let acceptedLink = listener.accept(timeout: .seconds(10))
        let dialed = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: options(rank: 0, link: spec), group: group)
        let accepted = try await acceptedLink
        var payload = ByteBuffer()
        payload.writeRepeatingByte(1, count: 50_000)
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<10 {
            _ = dialed.send(Frame(header: FrameHeader(type: .probe, runID: 1, sender: 0, count: i == 9 ? 1 : 0), payload: payload))
        }
        for _ in 0..<10 { _ = try await accepted.receive(timeout: .seconds(10), what: "probe") }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertEqual(seconds, 0.5 + 0.05, accuracy: 0.15, "500 kB at 1 MB/s + 50 ms")
        await dialed.close()
        await accepted.close()
        await listener.close()
    }

    func testLinkSpecParsing() throws {
        XCTAssertEqual(try LinkSpec(parsing: "100mbit,40ms").bytesPerSecond, 12.5e6)
        XCTAssertEqual(try LinkSpec(parsing: "1gbit").delaySeconds, 0)
        XCTAssertNil(try LinkSpec(parsing: "unlimited,5ms").bytesPerSecond)
        XCTAssertEqual(try LinkSpec(parsing: "100mbit,40ms").description, "100mbit,40ms")
        for bad in ["", "fast", "100mb", "100mbit,40", "-1mbit", "100mbit,40ms,1", "100mbit,-4ms"] {
            XCTAssertThrowsError(try LinkSpec(parsing: bad), bad)
        }
    }

    func testARingTakesOnlyLinksOfItsOwnEpoch() async throws {
        func epoch(_ e: UInt64, rank: UInt32) -> PeerLink.Options {
            var o = options(rank: rank)
            o.local.ringEpoch = e
            return o
        }
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, options: epoch(0, rank: 1), group: group)
        // A link of ring 1 arrives before this worker forms ring 2: it is dropped, not taken in.
        let stale = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: epoch(1, rank: 0), group: group)
        async let takenLink = listener.accept(ringEpoch: 2, timeout: .seconds(10))
        try await Task.sleep(nanoseconds: 100_000_000)
        let current = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: epoch(2, rank: 0), group: group)
        let taken = try await takenLink
        XCTAssertEqual(taken.peer.ringEpoch, 2)
        do {
            _ = try await stale.receive(timeout: .seconds(5), what: "anything")
            XCTFail("the stale link stayed open")
        } catch TransportError.closed {}
        // Forming ring 2 now, a dialer of ring 1 is refused at the handshake, with the reason.
        do {
            _ = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: epoch(1, rank: 0), group: group)
            XCTFail("a dialer of an older ring was accepted")
        } catch let TransportError.refused(_, reason) {
            XCTAssertTrue(reason.contains("stale ring"), reason)
        }
        // A dialer of ring 3 is ahead: forming ring 2 fails, and ring 3 takes that link.
        let ahead = try await PeerLink.connect(host: "127.0.0.1", port: listener.port, options: epoch(3, rank: 0), group: group)
        do {
            _ = try await listener.accept(ringEpoch: 2, timeout: .seconds(10))
            XCTFail("ring 2 formed with a link of ring 3 waiting")
        } catch let TransportError.newerRing(_, e, ours) {
            XCTAssertEqual(e, 3)
            XCTAssertEqual(ours, 2)
        }
        let next = try await listener.accept(ringEpoch: 3, timeout: .seconds(1))
        XCTAssertEqual(next.peer.ringEpoch, 3)
        var payload = ByteBuffer()
        payload.writeBytes([1, 2, 3, 4])
        let frame = Frame(header: FrameHeader(type: .data, codec: .fp32, runID: 1, round: 0, sender: 0, offset: 0, count: 1), payload: payload)
        try await ahead.send(frame).get()
        let received = try await next.receive(timeout: .seconds(5), what: "data")
        XCTAssertEqual(received, frame, "the kept link carries the newer ring's data")
        for link in [taken, current, ahead, next] { await link.close() }
        await listener.close()
    }
}
