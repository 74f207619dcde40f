import NIOConcurrencyHelpers
import NIOCore
import Wire

/// An in-process link: frames sent on one end arrive at the other, unchanged. For tests of the
/// collectives (and of faults, through `dropAfter`), without sockets.
public final class MemoryLink: FrameLink, @unchecked Sendable {
    public let peerDescription: String
    public let eventLoop: EventLoop
    private let inbox = AsyncQueue<Frame>()
    private weak var other: MemoryLink?
    private let lock = NIOLock()
    private var remainingSends: Int?

    private init(name: String, eventLoop: EventLoop) {
        peerDescription = name
        self.eventLoop = eventLoop
    }

    /// Two connected ends; `a` talks to `b`.
    public static func pair(_ a: String, _ b: String, eventLoop: EventLoop) -> (MemoryLink, MemoryLink) {
        let ea = MemoryLink(name: b, eventLoop: eventLoop), eb = MemoryLink(name: a, eventLoop: eventLoop)
        ea.other = eb
        eb.other = ea
        return (ea, eb)
    }

    /// After `n` more sends this end behaves as if the connection dropped.
    public func dropAfter(_ n: Int) {
        lock.withLock { remainingSends = n }
    }

    public func send(_ frame: Frame) -> EventLoopFuture<Void> {
        let dropped: Bool = lock.withLock {
            guard let left = remainingSends else { return false }
            remainingSends = left - 1
            return left <= 0
        }
        if dropped {
            // The other end sees this end's peer as gone: its own description of us names it.
            if let other { other.inbox.fail(TransportError.closed(peer: other.peerDescription, reason: "connection dropped")) }
            return eventLoop.makeFailedFuture(TransportError.closed(peer: peerDescription, reason: "connection dropped"))
        }
        other?.inbox.push(frame)
        return eventLoop.makeSucceededVoidFuture()
    }

    public func receive(timeout: TimeAmount, what: @autoclosure @escaping @Sendable () -> String) async throws -> Frame {
        let peer = peerDescription
        let seconds = Double(timeout.nanoseconds) / 1e9
        return try await inbox.next(timeout: timeout, on: eventLoop) {
            TransportError.timeout(peer: peer, waitingFor: what(), seconds: seconds)
        }
    }
}
