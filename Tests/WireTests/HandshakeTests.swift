import NIOCore
import Wire
import XCTest

final class HandshakeTests: XCTestCase {
    let base = Hello(runID: 7, layoutHash: 0xABCD, vectorLength: 1000, rank: 0, name: "alpha")

    func peer(_ change: (inout Hello) -> Void) -> Hello {
        var h = Hello(runID: 7, layoutHash: 0xABCD, vectorLength: 1000, rank: 1, name: "beta")
        change(&h)
        return h
    }

    /// Runs the two state machines against each other, frame by frame, as a connection would.
    func handshake(dialer: Hello, listener: Hello) -> (HandshakeStateMachine, HandshakeStateMachine, [HandshakeStateMachine.Action]) {
        var d = HandshakeStateMachine(role: .dialer, local: dialer)
        var l = HandshakeStateMachine(role: .listener, local: listener)
        var log: [HandshakeStateMachine.Action] = [l.connected()]
        guard case let .send(hello) = d.connected() else { XCTFail("dialer must send hello"); return (d, l, log) }
        let answer = l.received(roundTripped(hello))
        log.append(answer)
        switch answer {
        case let .send(frame), let .sendAndClose(frame, _): log.append(d.received(roundTripped(frame)))
        default: break
        }
        return (d, l, log)
    }

    func roundTripped(_ frame: Frame) -> Frame {
        var b = ByteBuffer()
        frame.write(to: &b)
        var decoder = FrameDecoder()
        return try! decoder.decode(buffer: &b)!
    }

    func testMatchingPeersConnect() {
        let (d, l, log) = handshake(dialer: peer { _ in }, listener: base)
        XCTAssertEqual(d.state, .established(peer: base))
        XCTAssertEqual(l.state, .established(peer: peer { _ in }))
        XCTAssertEqual(log.last, .established(base))
    }

    func testMismatchesAreRefusedSayingWhich() {
        let cases: [(Hello, String)] = [
            (peer { $0.runID = 8 }, "run id mismatch: peer 'beta' is in run 0x8, this is run 0x7"),
            (peer { $0.layoutHash = 0x1234 }, "model layout mismatch: peer 'beta' has layout hash 0x1234, ours is 0xabcd"),
            (peer { $0.protocolVersion = FrameHeader.currentVersion + 1 },
             "protocol version mismatch: peer 'beta' speaks version \(FrameHeader.currentVersion + 1), we speak \(FrameHeader.currentVersion)"),
            (peer { $0.vectorLength = 999 }, "vector length mismatch"),
        ]
        for (dialer, reason) in cases {
            let (d, l, log) = handshake(dialer: dialer, listener: base)
            guard case let .closed(listenerReason) = l.state else { return XCTFail("listener accepted \(dialer)") }
            XCTAssertTrue(listenerReason.hasPrefix(reason), listenerReason)
            guard case let .close(dialerReason) = log.last else { return XCTFail("dialer not closed: \(log)") }
            XCTAssertTrue(dialerReason.contains("refused by peer: " + reason), dialerReason)
            XCTAssertEqual(d.state, .closed(reason: dialerReason))
        }
    }

    func testDataBeforeHandshakeOrFromAnotherSenderIsRejected() {
        var l = HandshakeStateMachine(role: .listener, local: base)
        _ = l.connected()
        let data = Frame(header: FrameHeader(type: .data, runID: 7, sender: 1, count: 0), payload: ByteBuffer())
        guard case .close = l.received(data) else { return XCTFail("data accepted before hello") }

        let (_, listener, _) = handshake(dialer: peer { _ in }, listener: base)
        var established = listener
        XCTAssertEqual(established.received(data), .deliver(data))
        let spoofed = Frame(header: FrameHeader(type: .data, runID: 7, sender: 5, count: 0), payload: ByteBuffer())
        guard case .close = established.received(spoofed) else { return XCTFail("spoofed sender accepted") }
    }

    func testMalformedHelloIsRefused() {
        var l = HandshakeStateMachine(role: .listener, local: base)
        _ = l.connected()
        var payload = ByteBuffer()
        payload.writeInteger(UInt64(1))
        let bad = Frame(header: FrameHeader(type: .hello, runID: 7, sender: 1), payload: payload)
        guard case let .close(reason) = l.received(bad) else { return XCTFail("malformed hello accepted") }
        XCTAssertTrue(reason.contains("bad hello"), reason)
    }

    func testTheListenerRefusesADialerOfAnOlderRingAndTakesANewerOne() {
        var listener = base
        listener.ringEpoch = 5
        let (_, stale, _) = handshake(dialer: peer { $0.ringEpoch = 4 }, listener: listener)
        guard case let .closed(reason) = stale.state else { return XCTFail("a dialer of an older ring was taken") }
        XCTAssertTrue(reason.hasPrefix("stale ring: peer 'beta' dialed for ring epoch 4, this worker forms epoch 5"), reason)
        // A newer dialer is ahead of this side, which has not read the new ring yet.
        let (d, ahead, _) = handshake(dialer: peer { $0.ringEpoch = 6 }, listener: listener)
        XCTAssertEqual(ahead.state, .established(peer: peer { $0.ringEpoch = 6 }))
        XCTAssertEqual(d.state, .established(peer: listener), "the dialer takes the listener's welcome and its epoch back")
    }

    /// Issue 17: over TLS the link proves a name (the peer's certificate), and a hello may claim
    /// only that one; a link that proved none is refused.
    func testAnAuthenticatedLinkTakesOnlyTheNameItsCertificateProved() {
        func listen(proven: String?) -> (HandshakeStateMachine, HandshakeStateMachine.Action) {
            var l = HandshakeStateMachine(role: .listener, local: base, authenticated: true)
            _ = l.connected()
            if let proven { l.peerProved(name: proven) }
            let action = l.received(roundTripped(peer { _ in }.frame()))
            return (l, action)
        }
        XCTAssertEqual(listen(proven: "beta").0.state, .established(peer: peer { _ in }))
        guard case let .sendAndClose(_, impostor) = listen(proven: "gamma").1 else { return XCTFail("an impostor was welcomed") }
        XCTAssertEqual(impostor, "peer's certificate was issued to 'gamma' but its hello claims to be 'beta'")
        guard case let .sendAndClose(_, nameless) = listen(proven: nil).1 else { return XCTFail("an unproven peer was welcomed") }
        XCTAssertTrue(nameless.contains("proved no name"), nameless)
        // Hellos carry 64 bytes of a name: a longer certified name matches its first 64.
        let long = String(repeating: "n", count: 100)
        var l = HandshakeStateMachine(role: .listener, local: base, authenticated: true)
        _ = l.connected()
        l.peerProved(name: long)
        XCTAssertEqual(l.received(roundTripped(peer { $0.name = long }.frame())), .send(base.frame(type: .welcome)))
        // The dialer judges the welcome the same way.
        var d = HandshakeStateMachine(role: .dialer, local: peer { _ in }, authenticated: true)
        _ = d.connected()
        d.peerProved(name: "mallory")
        XCTAssertEqual(d.received(roundTripped(base.frame(type: .welcome))),
                       .close(reason: "peer's certificate was issued to 'mallory' but its hello claims to be 'alpha'"))
    }
}
