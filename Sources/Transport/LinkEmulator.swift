import NIOCore

/// Makes a connection behave like a slow link: outgoing bytes leave at `bytesPerSecond` (a
/// serialisation clock, like a token bucket with a one-write burst) and reach the socket
/// `delaySeconds` later (a timed release queue). Order is preserved; a write's promise completes
/// when the bytes are handed to the socket, so callers that wait on it feel the link's pace.
///
/// Goes right above the socket, below the frame encoder: it shapes bytes, not frames.
public final class LinkEmulatorHandler: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private struct Pending {
        let data: ByteBuffer
        let promise: EventLoopPromise<Void>?
        let release: NIODeadline
    }

    private let spec: LinkSpec
    private var queue: [Pending] = []
    private var head = 0
    /// When the simulated wire is free again.
    private var wireFree = NIODeadline.distantPast
    private var timer: Scheduled<Void>?

    public init(spec: LinkSpec) {
        self.spec = spec
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        let now = NIODeadline.now()
        let start = max(now, wireFree)
        var finish = start
        if let rate = spec.bytesPerSecond {
            finish = start + .nanoseconds(Int64(Double(bytes.readableBytes) / rate * 1e9))
        }
        wireFree = finish
        let release = finish + .nanoseconds(Int64(spec.delaySeconds * 1e9))
        queue.append(Pending(data: bytes, promise: promise, release: release))
        if queue.count - head == 1 { schedule(context: context, at: release) }
    }

    public func flush(context: ChannelHandlerContext) {
        // Held writes are flushed when they are released.
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        timer?.cancel()
        timer = nil
        failPending(ChannelError.ioOnClosedChannel)
        context.close(mode: mode, promise: promise)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        failPending(ChannelError.ioOnClosedChannel)
    }

    private func failPending(_ error: Error) {
        let pending = queue[head...]
        queue.removeAll()
        head = 0
        for p in pending { p.promise?.fail(error) }
    }

    private func schedule(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.release(context: context)
        }
    }

    private func release(context: ChannelHandlerContext) {
        timer = nil
        let now = NIODeadline.now()
        var wrote = false
        while head < queue.count, queue[head].release <= now {
            let p = queue[head]
            head += 1
            context.write(wrapOutboundOut(p.data), promise: p.promise)
            wrote = true
        }
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        if wrote { context.flush() }
        if head < queue.count { schedule(context: context, at: queue[head].release) }
    }
}
