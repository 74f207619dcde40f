import Logging
import NIOCore
import NIOPosix
import Wire

/// A TCP connection to one peer, after the handshake: frames in both directions, with optional
/// link emulation on what we send.
public final class PeerLink: FrameLink, @unchecked Sendable {
    /// The peer's hello (run, layout, rank, name).
    public let peer: Hello
    public let channel: Channel
    private let inbox: AsyncQueue<Frame>
    // Touched only by the single consumer task (see FrameLink.receive).
    private var handshake: HandshakeStateMachine

    public var peerDescription: String {
        "peer '\(peer.name)' (rank \(peer.rank), \(channel.remoteAddress.map { "\($0)" } ?? "?"))"
    }

    public var eventLoop: EventLoop { channel.eventLoop }

    init(peer: Hello, channel: Channel, inbox: AsyncQueue<Frame>, handshake: HandshakeStateMachine) {
        self.peer = peer
        self.channel = channel
        self.inbox = inbox
        self.handshake = handshake
    }

    public func send(_ frame: Frame) -> EventLoopFuture<Void> {
        channel.writeAndFlush(frame)
    }

    public func receive(timeout: TimeAmount, what: @autoclosure @escaping @Sendable () -> String) async throws -> Frame {
        let description = peerDescription
        let seconds = Double(timeout.nanoseconds) / 1e9
        while true {
            let frame = try await inbox.next(timeout: timeout, on: channel.eventLoop) {
                TransportError.timeout(peer: description, waitingFor: what(), seconds: seconds)
            }
            switch handshake.received(frame) {
            case let .deliver(f):
                return f
            case let .close(reason), let .sendAndClose(_, reason):
                channel.close(promise: nil)
                throw TransportError.closed(peer: description, reason: reason)
            case .none, .send, .established:
                continue
            }
        }
    }

    /// Says goodbye and closes the connection.
    public func close() async {
        let bye = Frame(header: FrameHeader(type: .goodbye, runID: handshake.local.runID, sender: handshake.local.rank), payload: ByteBuffer())
        try? await channel.writeAndFlush(bye).get()
        try? await channel.close().get()
    }

    // MARK: - Establishing links

    /// Settings shared by dialing and listening.
    public struct Options: Sendable {
        /// What we tell peers about ourselves.
        public var local: Hello
        /// Shaping of what we send on every connection.
        public var link: LinkSpec = .unlimited
        public var limits = FrameLimits()
        /// How long a handshake may take.
        public var handshakeTimeout: TimeAmount = .seconds(10)
        /// Bytes of received frames buffered before we stop reading from the socket.
        public var inboxBytes = 64 << 20

        public init(local: Hello) {
            self.local = local
        }
    }

    /// Dials `host:port` until it answers (exponential backoff from 50 ms, capped at 1 s, for at
    /// most `patience`), then runs the handshake. A refusal is final and not retried.
    public static func connect(host: String, port: Int, options: Options, group: EventLoopGroup,
                               patience: TimeAmount = .seconds(30), logger: Logger? = nil) async throws -> PeerLink {
        let address = "\(host):\(port)"
        let deadline = NIODeadline.now() + patience
        var delay = TimeAmount.milliseconds(50)
        var attempts = 0
        while true {
            attempts += 1
            let inbox = makeInbox(options)
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelOption(.autoRead, value: false)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try configure(channel, inbox: inbox, options: options) }
                    }
                    .connect(host: host, port: port).get()
                return try await establish(channel: channel, inbox: inbox, role: .dialer, options: options, address: address)
            } catch let error as TransportError {
                throw error
            } catch {
                logger?.debug("connect to \(address) failed (attempt \(attempts)): \(error)")
                if NIODeadline.now() + delay > deadline {
                    throw TransportError.connectFailed(address: address, attempts: attempts, lastError: "\(error)")
                }
                try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    static func makeInbox(_ options: Options) -> AsyncQueue<Frame> {
        AsyncQueue<Frame>(lowWater: options.inboxBytes / 2) { FrameHeader.size + $0.payload.readableBytes }
    }

    /// Installs emulator, framing and the inbox handler (on the channel's event loop).
    static func configure(_ channel: Channel, inbox: AsyncQueue<Frame>, options: Options) throws {
        let sync = channel.pipeline.syncOperations
        if options.link != .unlimited { try sync.addHandler(LinkEmulatorHandler(spec: options.link)) }
        try sync.addHandler(ByteToMessageHandler(FrameDecoder(limits: options.limits)))
        try sync.addHandler(MessageToByteHandler(FrameEncoder()))
        try sync.addHandler(InboxHandler(inbox: inbox, highWater: options.inboxBytes))
    }

    /// Runs the handshake on a connected channel; closes it on failure.
    static func establish(channel: Channel, inbox: AsyncQueue<Frame>, role: HandshakeStateMachine.Role,
                          options: Options, address: String) async throws -> PeerLink {
        var machine = HandshakeStateMachine(role: role, local: options.local)
        let who = "peer at \(address)"
        let seconds = Double(options.handshakeTimeout.nanoseconds) / 1e9
        do {
            if case let .send(hello) = machine.connected() { try await channel.writeAndFlush(hello).get() }
            while true {
                let frame = try await inbox.next(timeout: options.handshakeTimeout, on: channel.eventLoop) {
                    TransportError.timeout(peer: who, waitingFor: "the handshake", seconds: seconds)
                }
                switch machine.received(frame) {
                case .none, .deliver:
                    continue
                case let .send(reply):
                    try await channel.writeAndFlush(reply).get()
                    if case let .established(peer) = machine.state {
                        return PeerLink(peer: peer, channel: channel, inbox: inbox, handshake: machine)
                    }
                case let .established(peer):
                    return PeerLink(peer: peer, channel: channel, inbox: inbox, handshake: machine)
                case let .sendAndClose(reply, reason):
                    try? await channel.writeAndFlush(reply).get()
                    throw TransportError.refused(peer: who, reason: "we refused it: \(reason)")
                case let .close(reason):
                    throw reason.hasPrefix("refused by peer: ")
                        ? TransportError.refused(peer: who, reason: String(reason.dropFirst("refused by peer: ".count)))
                        : TransportError.protocolViolation(peer: who, reason: reason)
                }
            }
        } catch {
            try? await channel.close().get()
            throw error
        }
    }
}

/// Hands decoded frames to the link's queue and stops reading from the socket while the queue
/// holds more than `highWater` bytes, so a fast or hostile peer cannot grow it without bound.
final class InboxHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame

    private let inbox: AsyncQueue<Frame>
    private let highWater: Int
    private var paused = false
    private var context: ChannelHandlerContext?

    init(inbox: AsyncQueue<Frame>, highWater: Int) {
        self.inbox = inbox
        self.highWater = highWater
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loop = context.eventLoop
        inbox.onDrained = { [weak self] in
            guard let handler = self else { return }
            loop.execute { handler.resume() }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.push(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if inbox.queued < highWater { context.read() } else { paused = true }
    }

    private func resume() {
        guard paused, let context else { return }
        paused = false
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        inbox.fail(TransportError.closed(peer: "\(context.remoteAddress.map { "\($0)" } ?? "peer")", reason: "\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.fail(TransportError.closed(peer: "\(context.remoteAddress.map { "\($0)" } ?? "peer")", reason: "connection closed"))
        context.fireChannelInactive()
    }
}
