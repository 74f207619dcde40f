import NIOCore
import Wire

/// A two-way path to one peer that carries frames: what the collectives need from a transport.
///
/// `send` returns when the frame is queued; its future completes once the bytes are handed to the
/// socket (after any link emulation), which is how callers pace themselves. `receive` is called
/// by one task at a time.
public protocol FrameLink: AnyObject, Sendable {
    /// Human-readable peer identity for errors: name, rank and address.
    var peerDescription: String { get }
    /// The event loop that `send`'s futures belong to.
    var eventLoop: EventLoop { get }
    func send(_ frame: Frame) -> EventLoopFuture<Void>
    /// The next frame from the peer; `what` describes what is awaited, for the timeout message.
    func receive(timeout: TimeAmount, what: @autoclosure @escaping @Sendable () -> String) async throws -> Frame
}
