/// Why a connection to a peer failed; each case names the peer and, where it applies, the round.
public enum TransportError: Error, CustomStringConvertible {
    case timeout(peer: String, waitingFor: String, seconds: Double)
    case closed(peer: String, reason: String)
    case connectFailed(address: String, attempts: Int, lastError: String)
    case refused(peer: String, reason: String)
    case protocolViolation(peer: String, reason: String)
    case bindFailed(address: String, reason: String)
    /// A peer dialed for a newer ring than the one this worker is forming.
    case newerRing(peer: String, epoch: UInt64, ours: UInt64)

    public var description: String {
        switch self {
        case let .timeout(peer, what, seconds):
            return "timed out after \(formatSeconds(seconds)) waiting for \(what) from \(peer)"
        case let .closed(peer, reason): return "connection to \(peer) closed: \(reason)"
        case let .connectFailed(address, attempts, last):
            return "could not connect to \(address) after \(attempts) attempts (last: \(last)); is the peer running and reachable?"
        case let .refused(peer, reason): return "\(peer) refused us: \(reason)"
        case let .protocolViolation(peer, reason): return "protocol violation by \(peer): \(reason)"
        case let .bindFailed(address, reason): return "cannot listen on \(address): \(reason)"
        case let .newerRing(peer, epoch, ours):
            return "\(peer) dialed for ring epoch \(epoch) while this worker forms epoch \(ours); read the ring again"
        }
    }
}

private func formatSeconds(_ s: Double) -> String {
    s >= 1 ? "\((s * 10).rounded() / 10) s" : "\(Int((s * 1000).rounded())) ms"
}
