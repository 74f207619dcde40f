import NIOCore

/// What a peer says about itself when a connection opens.
public struct Hello: Sendable, Hashable {
    /// Longest peer name accepted, in UTF-8 bytes.
    public static let maxNameBytes = 64

    public var runID: UInt64
    public var protocolVersion: UInt8 = FrameHeader.currentVersion
    /// `ParameterLayout.hash` of the model whose vector the peers exchange.
    public var layoutHash: UInt64
    /// Elements in the flat vector.
    public var vectorLength: UInt64
    public var rank: UInt32
    /// Human-readable worker name (for logs and refusals).
    public var name: String
    /// Membership epoch of the ring this connection is for (0 outside a coordinated run): a
    /// listener refuses a dialer of an older ring, and a ring takes in only its own epoch's links.
    public var ringEpoch: UInt64 = 0

    public init(runID: UInt64, layoutHash: UInt64, vectorLength: UInt64, rank: UInt32, name: String) {
        self.runID = runID
        self.layoutHash = layoutHash
        self.vectorLength = vectorLength
        self.rank = rank
        self.name = name
    }

    /// What a hello carries of `name`: its first `maxNameBytes` bytes, so that a longer worker name
    /// is compared with a peer's hello as the hello can hold it.
    public static func carried(name: String) -> String {
        String(decoding: name.utf8.prefix(maxNameBytes), as: UTF8.self)
    }

    /// The hello (or welcome) frame: run, version and rank in the header; the rest in the payload.
    public func frame(type: MessageType = .hello) -> Frame {
        var payload = ByteBuffer()
        payload.writeInteger(layoutHash)
        payload.writeInteger(vectorLength)
        let nameBytes = Array(name.utf8.prefix(Self.maxNameBytes))
        payload.writeInteger(UInt8(nameBytes.count))
        payload.writeBytes(nameBytes)
        payload.writeInteger(ringEpoch)
        var header = FrameHeader(type: type, runID: runID, sender: rank)
        header.version = protocolVersion
        return Frame(header: header, payload: payload)
    }

    /// Parses a hello or welcome frame.
    public init(frame: Frame) throws {
        var p = frame.payload
        guard let hash = p.readInteger(as: UInt64.self), let length = p.readInteger(as: UInt64.self),
              let nameLength = p.readInteger(as: UInt8.self), Int(nameLength) <= Self.maxNameBytes,
              let name = p.readString(length: Int(nameLength)), let epoch = p.readInteger(as: UInt64.self), p.readableBytes == 0
        else { throw WireError.malformedPayload("hello payload of \(frame.payload.readableBytes) bytes is not layout hash, length, name, ring epoch") }
        self.init(runID: frame.header.runID, layoutHash: hash, vectorLength: length, rank: frame.header.sender, name: name)
        protocolVersion = frame.header.version
        ringEpoch = epoch
    }

    /// Why a peer with `other`'s hello cannot join us, or nil when it can.
    public func refusal(of other: Hello) -> String? {
        if other.protocolVersion != protocolVersion {
            return "protocol version mismatch: peer '\(other.name)' speaks version \(other.protocolVersion), we speak \(protocolVersion)"
        }
        if other.runID != runID {
            return "run id mismatch: peer '\(other.name)' is in run \(hex(other.runID)), this is run \(hex(runID))"
        }
        if other.layoutHash != layoutHash {
            return "model layout mismatch: peer '\(other.name)' has layout hash \(hex(other.layoutHash)), ours is \(hex(layoutHash)); both sides must train the same model config"
        }
        if other.vectorLength != vectorLength {
            return "vector length mismatch: peer '\(other.name)' has \(other.vectorLength) values, we have \(vectorLength)"
        }
        return nil
    }
}

private func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16) }

/// The handshake that opens every peer connection, as a state machine that takes events and
/// returns actions (no I/O): the dialer sends `hello`, the listener answers `welcome` or
/// `refuse`, and only then does data flow.
public struct HandshakeStateMachine: Sendable {
    /// Which side of the connection we are.
    public enum Role: Sendable { case dialer, listener }

    public enum State: Sendable, Equatable {
        case idle
        case awaitingWelcome
        case awaitingHello
        case established(peer: Hello)
        case closed(reason: String)
    }

    /// What the caller must do.
    public enum Action: Sendable, Equatable {
        case none
        case send(Frame)
        /// Send the frame, then close the connection.
        case sendAndClose(Frame, reason: String)
        /// Handshake done: the peer is known.
        case established(Hello)
        /// Hand a frame to the collective layer.
        case deliver(Frame)
        /// Close the connection; `reason` says why (for the log and the user).
        case close(reason: String)
    }

    public let role: Role
    public let local: Hello
    public private(set) var state: State = .idle
    /// Whether the link proves who the peer is (TLS with the run's certificates): then the peer's
    /// hello may only claim the name its certificate proved.
    public let authenticated: Bool
    /// The name the link proved (`peerProved`), before the peer's hello is judged.
    public private(set) var provenPeerName: String?

    public init(role: Role, local: Hello, authenticated: Bool = false) {
        self.role = role
        self.local = local
        self.authenticated = authenticated
    }

    /// The link proved the peer is `name` (the name in its certificate; empty if none).
    public mutating func peerProved(name: String) {
        provenPeerName = name
    }

    /// Why the hello of `peer` does not match what the link proved, or nil when it does.
    private func identityRefusal(of peer: Hello) -> String? {
        guard authenticated else { return nil }
        guard let proven = provenPeerName, !proven.isEmpty else {
            return "peer '\(peer.name)' proved no name: its certificate names no worker of this run"
        }
        return peer.name == Hello.carried(name: proven) ? nil
            : "peer's certificate was issued to '\(proven)' but its hello claims to be '\(peer.name)'"
    }

    /// The connection is open.
    public mutating func connected() -> Action {
        switch role {
        case .dialer:
            state = .awaitingWelcome
            return .send(local.frame(type: .hello))
        case .listener:
            state = .awaitingHello
            return .none
        }
    }

    /// A frame arrived.
    public mutating func received(_ frame: Frame) -> Action {
        switch (state, frame.header.type) {
        case (.awaitingHello, .hello):
            let peer: Hello
            do { peer = try Hello(frame: frame) } catch { return fail("bad hello: \(error)") }
            // Only the listener judges epochs: a dialer of a newer ring is ahead (this side has
            // not read the new ring yet) and waits in the listener for it; an older one is stale.
            let stale = peer.ringEpoch < local.ringEpoch
                ? "stale ring: peer '\(peer.name)' dialed for ring epoch \(peer.ringEpoch), this worker forms epoch \(local.ringEpoch); read the ring again"
                : nil
            if let reason = identityRefusal(of: peer) ?? local.refusal(of: peer) ?? stale {
                state = .closed(reason: reason)
                var refusal = ByteBuffer()
                refusal.writeString(reason)
                return .sendAndClose(Frame(header: FrameHeader(type: .refuse, runID: local.runID, sender: local.rank), payload: refusal), reason: reason)
            }
            state = .established(peer: peer)
            return .send(local.frame(type: .welcome))
        case (.awaitingWelcome, .welcome):
            let peer: Hello
            do { peer = try Hello(frame: frame) } catch { return fail("bad welcome: \(error)") }
            if let reason = identityRefusal(of: peer) ?? local.refusal(of: peer) { return fail(reason) }
            state = .established(peer: peer)
            return .established(peer)
        case (.awaitingWelcome, .refuse), (.awaitingHello, .refuse):
            var payload = frame.payload
            let text = payload.readString(length: min(payload.readableBytes, 1024)) ?? "no reason given"
            return fail("refused by peer: \(text)")
        case (.established, .hello), (.established, .welcome):
            return fail("unexpected \(frame.header.type) after the handshake")
        case (.established(let peer), _):
            if frame.header.type == .goodbye {
                state = .closed(reason: "peer said goodbye")
                return .close(reason: "peer '\(peer.name)' said goodbye")
            }
            guard frame.header.runID == local.runID, frame.header.sender == peer.rank else {
                return fail("frame from rank \(frame.header.sender) of run \(frame.header.runID) on the connection of rank \(peer.rank)")
            }
            return .deliver(frame)
        case (.closed, _):
            return .none
        default:
            return fail("unexpected \(frame.header.type) before the handshake finished")
        }
    }

    private mutating func fail(_ reason: String) -> Action {
        state = .closed(reason: reason)
        return .close(reason: reason)
    }
}
