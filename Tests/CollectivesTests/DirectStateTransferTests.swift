import Collectives
import NIOCore
import NIOPosix
import RunTrust
import Transport
import Wire
import XCTest

/// A worker's state handed straight to a worker without any, over mutual TLS on loopback sockets
/// (issue 17): the taker gets every value, and a worker the source was not told to serve is not.
final class DirectStateTransferTests: XCTestCase {
    let group = MultiThreadedEventLoopGroup.singleton
    static let authority = try! RunAuthority.create(runName: "transfer")

    func options(rank: UInt32, name: String) throws -> PeerLink.Options {
        var o = PeerLink.Options(local: Hello(runID: 9, layoutHash: 0xAB, vectorLength: 10, rank: rank, name: name))
        let key = WorkerKey()
        let certificate = try Self.authority.issueWorkerCertificate(name: name, publicKeyPEM: key.publicKeyPEM)
        o.security = .tls(try PeerTLS(certificatePEM: try certificate.serializeAsPEM().pemString, key: key,
                                      authorityPEM: Self.authority.certificatePEM))
        o.local.ringEpoch = 4
        o.handshakeTimeout = .seconds(3)
        return o
    }

    /// Three workers' transfers: listeners bound, options with each rank.
    func transfers() async throws -> [DirectStateTransfer] {
        let names = ["w0", "w1", "w2"]
        var listeners: [(PeerListener, PeerLink.Options)] = []
        for (rank, name) in names.enumerated() {
            let o = try options(rank: UInt32(rank), name: name)
            listeners.append((try await PeerListener.bind(host: "127.0.0.1", port: 0, options: o, group: group), o))
        }
        let addresses = listeners.map { DirectStateTransfer.Address(host: "127.0.0.1", port: $0.0.port) }
        return listeners.map { DirectStateTransfer(listener: $0.0, options: $0.1, group: group, addresses: addresses, names: names) }
    }

    func testTheTakerGetsTheSourcesStateAndNobodyElseIsServed() async throws {
        let w = try await transfers()
        // 2.5 chunks of state, so that the last chunk is partial.
        let count = StateUpload.defaultChunkValues * 5 / 2
        let state = (0..<count).map { Float($0 % 977) * 0.5 - 3 }
        let source = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        let taken = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { source.deallocate(); taken.deallocate() }
        _ = source.initialize(from: state)
        taken.initialize(repeating: .nan)
        // The source's buffer outlives the serving task (awaited below).
        nonisolated(unsafe) let readOnly = UnsafeBufferPointer(source)
        // Rank 1 was not told to take state: it dials first and is turned away; rank 2 is served.
        let stray = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { stray.deallocate() }
        async let served = w[0].serve(readOnly, to: [2], timeout: .seconds(20))
        do {
            _ = try await w[1].download(from: 0, into: stray, timeout: .seconds(3))
            XCTFail("a worker the source was not told to serve got the state")
        } catch let failure as RingFailure {
            XCTAssertTrue(failure.peer.contains("w0"), "\(failure)")
        }
        let received = try await w[2].download(from: 0, into: taken, timeout: .seconds(20))
        let sent = try await served
        XCTAssertEqual(Array(taken), state)
        XCTAssertEqual(sent, received)
        XCTAssertEqual(sent, count * 4 + 4 * FrameHeader.size + 12)
        for t in w { await t.listener.close() }
    }

    func testASourceThatIsGoneFailsTheDownloadNamingIt() async throws {
        let w = try await transfers()
        await w[0].listener.close()
        let taken = UnsafeMutableBufferPointer<Float>.allocate(capacity: 10)
        defer { taken.deallocate() }
        do {
            _ = try await w[2].download(from: 0, into: taken, timeout: .seconds(2))
            XCTFail("downloaded from a closed listener")
        } catch let failure as RingFailure {
            XCTAssertEqual(failure.kind, .lost)
            XCTAssertTrue(failure.peer.contains("rank 0 ('w0')"), "\(failure)")
        }
        for t in w.dropFirst() { await t.listener.close() }
    }

    /// A taker that connects and then stops reading cannot hold the source: its link is closed when a
    /// chunk waits longer than the timeout to be written, and the source's failure says so.
    func testATakerThatStopsReadingIsCutOffAfterTheTimeout() async throws {
        let w = try await transfers()
        let count = 8 << 20  // 32 MB: more than the taker's inbox (1 MB) and the sockets' buffers hold
        let state = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { state.deallocate() }
        state.initialize(repeating: 1)
        var stalling = try options(rank: 2, name: "w2")
        stalling.inboxBytes = 1 << 20
        let taker = try await PeerLink.connect(host: "127.0.0.1", port: w[0].listener.port, options: stalling, group: group)
        let started = Date()
        do {
            _ = try await w[0].serve(UnsafeBufferPointer(state), to: [2], timeout: .seconds(2))
            XCTFail("the whole state was written to a taker that reads nothing")
        } catch let failure as RingFailure {
            XCTAssertEqual(failure.kind, .timedOut, "\(failure)")
            XCTAssertTrue(failure.detail.contains("the state to be read"), "\(failure)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        await taker.close()
        for t in w { await t.listener.close() }
    }
}
