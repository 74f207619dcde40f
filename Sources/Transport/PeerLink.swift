import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RunTrust
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
        /// Whether links are encrypted and authenticated (mutual TLS with the run's certificates).
        public var security = Security.plain

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
            if case .awaitingCertificate = options.security {
                throw TransportError.refused(peer: address, reason: "this worker has no certificate yet to dial with")
            }
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelOption(.autoRead, value: false)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try configure(channel, inbox: inbox, options: options, role: .dialer) }
                    }
                    .connect(host: host, port: port).get()
                return try await establish(channel: channel, inbox: inbox, role: .dialer, options: options, address: address)
            } catch let error as TransportError {
                throw error
            } catch let error as CancellationError {
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

    /// How links are protected.
    public enum Security: Sendable {
        /// Plain TCP: anyone who can reach the port and knows the run id and layout is a peer
        /// (`--insecure`, for benchmarks and closed networks).
        case plain
        /// Mutual TLS: both ends prove with a certificate from the run's authority that they were
        /// admitted, and the name a certificate proves is the only name its hello may claim.
        case tls(PeerTLS)
        /// TLS, but this worker's certificate is not issued yet (it joins with the port already
        /// bound): it cannot dial, and its listener holds connections unread until it is.
        case awaitingCertificate

        var isAuthenticated: Bool {
            if case .plain = self { return false }
            return true
        }
    }

    static func makeInbox(_ options: Options) -> AsyncQueue<Frame> {
        AsyncQueue<Frame>(lowWater: inboxBytes(options) / 2) { FrameHeader.size + $0.payload.readableBytes }
    }

    /// Bytes buffered before reading stops: at least a whole vector of fp32 values. A ring's
    /// first step has every worker post a whole chunk before it reads, so an inbox smaller than
    /// a chunk (two workers, a 200 MB model) left both blocked on writes for good. Bounded by the
    /// model this worker holds anyway, not by anything a peer says.
    static func inboxBytes(_ options: Options) -> Int {
        max(options.inboxBytes, Int(clamping: options.local.vectorLength) * 4 + (8 << 20))
    }

    /// Installs emulator, TLS, framing and the inbox handler (on the channel's event loop). The
    /// emulator sits next to the socket: it shapes the bytes on the wire, TLS records included.
    static func configure(_ channel: Channel, inbox: AsyncQueue<Frame>, options: Options, role: HandshakeStateMachine.Role) throws {
        let sync = channel.pipeline.syncOperations
        if options.link != .unlimited { try sync.addHandler(LinkEmulatorHandler(spec: options.link)) }
        switch (options.security, role) {
        case (.plain, _): break
        case let (.tls(tls), .dialer): try sync.addHandler(try NIOSSLClientHandler(context: tls.clientContext, serverHostname: nil))
        case let (.tls(tls), .listener): try sync.addHandler(NIOSSLServerHandler(context: tls.serverContext))
        case (.awaitingCertificate, _): throw TransportError.refused(peer: "peer", reason: "this worker's certificate is not issued yet")
        }
        try sync.addHandler(ByteToMessageHandler(FrameDecoder(limits: options.limits)))
        try sync.addHandler(MessageToByteHandler(FrameEncoder()))
        try sync.addHandler(InboxHandler(inbox: inbox, highWater: inboxBytes(options)))
    }

    /// Runs the handshake on a connected channel; closes it on failure.
    static func establish(channel: Channel, inbox: AsyncQueue<Frame>, role: HandshakeStateMachine.Role,
                          options: Options, address: String) async throws -> PeerLink {
        var machine = HandshakeStateMachine(role: role, local: options.local, authenticated: options.security.isAuthenticated)
        let who = "peer at \(address)"
        let seconds = Double(options.handshakeTimeout.nanoseconds) / 1e9
        // The whole handshake is bounded, TLS's included: the hello's write waits for it, and a
        // frozen peer (its kernel accepted the connection, the process never answers) would hold it
        // until the peer woke. Closing the channel ends every wait on it.
        let expired = NIOLockedValueBox(false)
        let expiry = channel.eventLoop.scheduleTask(in: options.handshakeTimeout) {
            expired.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { expiry.cancel() }
        do {
            // A cancelled dial (a ring the coordinator overtook) closes its channel, which ends its waits.
            return try await withTaskCancellationHandler {
                if case let .send(hello) = machine.connected() { try await sendHello(hello, on: channel, inbox: inbox) }
                while true {
                    let frame = try await inbox.next(timeout: options.handshakeTimeout, on: channel.eventLoop) {
                        TransportError.timeout(peer: who, waitingFor: "the handshake", seconds: seconds)
                    }
                    // A frame arrives only after the TLS handshake: the peer's certificate is known.
                    if machine.authenticated, machine.provenPeerName == nil {
                        let certificate = try await channel.nioSSL_peerCertificate().get()
                        machine.peerProved(name: certificate.flatMap(PeerTLS.name(of:)) ?? "")
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
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            try? await channel.close().get()
            if expired.withLockedValue({ $0 }) {
                throw TransportError.timeout(peer: who, waitingFor: "the handshake", seconds: seconds)
            }
            if Task.isCancelled { throw CancellationError() }
            throw Self.tlsRefusal(error, peer: who) ?? error
        }
    }

    /// A TLS handshake that failed on a certificate as a final refusal (not retried: the other end
    /// is not of this run); nil for other errors. A peer that closes mid-handshake without saying
    /// why (one still waiting for its own certificate) is retried.
    static func tlsRefusal(_ error: any Error, peer: String) -> TransportError? {
        guard let error = error as? NIOSSLError, !"\(error)".contains("EOF during handshake") else { return nil }
        // The peer's process ended (or its connection was cut) without closing TLS: it is gone,
        // not refusing us (a killed worker's links were reported as a certificate refusal).
        if case .uncleanShutdown = error { return nil }
        return .refused(peer: peer, reason: "the TLS handshake failed (\(error)); both ends need a certificate "
            + "from this run's authority, issued when they joined")
    }

    /// Sends the hello; when the TLS handshake under it fails, the write fails with a bare
    /// "closed channel" and the handshake's own error went to the inbox: that one is thrown.
    static func sendHello(_ hello: Frame, on channel: Channel, inbox: AsyncQueue<Frame>) async throws {
        do { try await channel.writeAndFlush(hello).get() } catch {
            _ = try await inbox.next(timeout: .milliseconds(200), on: channel.eventLoop) { error }
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
        let peer = "\(context.remoteAddress.map { "\($0)" } ?? "peer")"
        // A TLS handshake cut short stays a TLS error, which a dialer retries (see `tlsRefusal`).
        inbox.fail(PeerLink.tlsRefusal(error, peer: peer) ?? (error is NIOSSLError ? error : TransportError.closed(peer: peer, reason: "\(error)")))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.fail(TransportError.closed(peer: "\(context.remoteAddress.map { "\($0)" } ?? "peer")", reason: "connection closed"))
        context.fireChannelInactive()
    }
}
