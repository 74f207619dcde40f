import Transport
import Wire

/// Why a collective or the forming of a ring stopped, in terms a worker can act on: which peer,
/// in which round, and what happened to it. Every error a `Ring` operation throws is one of these
/// (or a `CancellationError`), so callers need not guess from transport error types.
public struct RingFailure: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, Equatable {
        /// The connection closed or could not be made: the peer is gone or unreachable.
        case lost
        /// Nothing arrived in time: the peer is frozen, overloaded, or gone without a close.
        case timedOut
        /// The peer's handshake refused us (another run, layout or ring epoch).
        case refused
        /// The peer sent what the protocol does not allow (a wrong frame, an undecodable payload).
        case invalid
        /// The peer already forms a newer ring: read the ring again.
        case newerRing
    }

    public var kind: Kind
    /// The peer, as its link describes it (name, rank, address).
    public var peer: String
    /// The collective's round; nil while the ring forms (or outside a numbered collective).
    public var round: UInt64?
    /// What the transport said.
    public var detail: String

    public init(kind: Kind, peer: String, round: UInt64?, detail: String) {
        self.kind = kind
        self.peer = peer
        self.round = round
        self.detail = detail
    }

    /// Classifies a transport or wire error; `peer` names the peer when the error does not.
    init(_ error: any Error, peer: String, round: UInt64?) {
        let kind: Kind
        var who = peer
        switch error {
        case let e as TransportError:
            switch e {
            case let .timeout(p, _, _): (kind, who) = (.timedOut, p)
            case let .closed(p, _): (kind, who) = (.lost, p)
            case let .connectFailed(address, _, _): (kind, who) = (.lost, address)
            case let .refused(p, _): (kind, who) = (.refused, p)
            case let .protocolViolation(p, _): (kind, who) = (.invalid, p)
            case let .newerRing(p, _, _): (kind, who) = (.newerRing, p)
            case .bindFailed: kind = .lost
            }
        case is WireError: kind = .invalid
        default: kind = .lost
        }
        self.init(kind: kind, peer: who, round: round, detail: "\(error)")
    }

    public var description: String {
        let when = round.map { " in round \($0)" } ?? ""
        return "peer \(peer) \(kind.phrase)\(when): \(detail)"
    }
}

extension RingFailure.Kind {
    var phrase: String {
        switch self {
        case .lost: "was lost"
        case .timedOut: "timed out"
        case .refused: "refused us"
        case .invalid: "broke the protocol"
        case .newerRing: "forms a newer ring"
        }
    }
}

extension Ring {
    /// Runs a collective, turning whatever stops it into a `RingFailure` of `round`. Errors that
    /// name no peer are put on `previous` (what it sent could not be read).
    func typedFailures<T>(round: UInt64, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var error as RingFailure {
            error.round = error.round ?? round
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw RingFailure(error, peer: previous?.peerDescription ?? "none", round: round)
        }
    }
}
