import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Wire

/// Accepts peer connections on a port and hands out those whose handshake succeeded.
///
/// A connection whose hello is refused (another run, version or model) is answered with the
/// reason, closed and logged; the listener keeps going.
public final class PeerListener: @unchecked Sendable {
    /// The port actually bound (useful with port 0).
    public let port: Int
    private let channel: Channel
    private let accepted: AsyncQueue<PeerLink>
    /// The ring epoch and this worker's rank in that ring, which this listener's welcome names (see
    /// `Hello.ringEpoch`): a dialer that receives on its link (a state download) checks frames by that rank.
    private let epoch: NIOLockedValueBox<(epoch: UInt64, rank: UInt32)>
    /// Links of a newer ring than the one being formed, kept for when it is.
    private let ahead = NIOLockedValueBox<[PeerLink]>([])
    /// How connections are protected (a worker binds before it joins, and gets its certificate at
    /// join), and the connections that wait for it.
    private let security: NIOLockedValueBox<(current: PeerLink.Security, waiting: [EventLoopPromise<PeerLink.Security>])>

    private init(port: Int, channel: Channel, accepted: AsyncQueue<PeerLink>, epoch: NIOLockedValueBox<(epoch: UInt64, rank: UInt32)>,
                 security: NIOLockedValueBox<(current: PeerLink.Security, waiting: [EventLoopPromise<PeerLink.Security>])>) {
        self.port = port
        self.channel = channel
        self.accepted = accepted
        self.epoch = epoch
        self.security = security
    }

    /// Protects connections with `security` (the certificate issued at join): from now on, and
    /// those that arrived while it was awaited.
    public func use(_ security: PeerLink.Security) {
        let waiting = self.security.withLockedValue { state -> [EventLoopPromise<PeerLink.Security>] in
            defer { state = (security, []) }
            return state.waiting
        }
        for promise in waiting { promise.succeed(security) }
    }

    /// The security for a connection arriving on `loop`: now, or once the certificate is issued.
    /// Meanwhile the connection is not read (a dialer's TLS hello waits in the socket), so a peer
    /// that dials a moment before this worker's join reply arrives is served, not reset.
    static func security(_ state: NIOLockedValueBox<(current: PeerLink.Security, waiting: [EventLoopPromise<PeerLink.Security>])>,
                         on loop: EventLoop, patience: TimeAmount) -> EventLoopFuture<PeerLink.Security> {
        state.withLockedValue { state in
            if case .awaitingCertificate = state.current {
                let promise = loop.makePromise(of: PeerLink.Security.self)
                state.waiting.append(promise)
                loop.scheduleTask(in: patience) {
                    promise.fail(TransportError.refused(peer: "a peer", reason: "this worker's certificate was not issued in time"))
                }
                return promise.futureResult
            }
            return loop.makeSucceededFuture(state.current)
        }
    }

    /// Binds `host:port` (port 0 picks a free one).
    public static func bind(host: String, port: Int, options: PeerLink.Options, group: EventLoopGroup,
                            logger: Logger? = nil) async throws -> PeerListener {
        let accepted = AsyncQueue<PeerLink>()
        let epoch = NIOLockedValueBox((epoch: options.local.ringEpoch, rank: options.local.rank))
        let security = NIOLockedValueBox((current: options.security, waiting: [EventLoopPromise<PeerLink.Security>]()))
        let channel: Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelInitializer { child in
                    let inbox = PeerLink.makeInbox(options)
                    let ring = epoch.withLockedValue { $0 }
                    return Self.security(security, on: child.eventLoop, patience: options.handshakeTimeout).flatMapThrowing { security in
                        var current = options
                        (current.local.ringEpoch, current.local.rank, current.security) = (ring.epoch, ring.rank, security)
                        try PeerLink.configure(child, inbox: inbox, options: current, role: .listener)
                        return current
                    }.map { settled in
                        let address = child.remoteAddress.map { "\($0)" } ?? "?"
                        Task {
                            do {
                                accepted.push(try await PeerLink.establish(channel: child, inbox: inbox, role: .listener,
                                                                           options: settled, address: address))
                            } catch {
                                logger?.warning("refused connection from \(address): \(error)")
                            }
                        }
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw TransportError.bindFailed(address: "\(host):\(port)", reason: "\(error)")
        }
        return PeerListener(port: channel.localAddress?.port ?? port, channel: channel, accepted: accepted, epoch: epoch,
                            security: security)
    }

    /// The next peer of the ring of `ringEpoch` that completed the handshake. From now on dialers
    /// of older rings are refused, and links of older rings still queued are closed; a link of a
    /// newer ring is kept for it and ends this wait with `TransportError.newerRing`, since the
    /// ring being formed is then out of date.
    /// `rank` is this worker's position in that ring (nil: as before).
    public func accept(ringEpoch: UInt64, rank: UInt32? = nil, timeout: TimeAmount) async throws -> PeerLink {
        epoch.withLockedValue {
            guard ringEpoch >= $0.epoch else { return }
            $0 = (ringEpoch, rank ?? $0.rank)
        }
        let deadline = NIODeadline.now() + timeout
        let kept = ahead.withLockedValue { links in
            defer { links.removeAll { $0.peer.ringEpoch <= ringEpoch } }
            return links
        }
        var found: PeerLink?
        for link in kept {
            if link.peer.ringEpoch == ringEpoch, found == nil { found = link } else if link.peer.ringEpoch <= ringEpoch { await link.close() }
        }
        if let found { return found }
        if let newer = kept.first(where: { $0.peer.ringEpoch > ringEpoch }) {
            throw TransportError.newerRing(peer: newer.peerDescription, epoch: newer.peer.ringEpoch, ours: ringEpoch)
        }
        while true {
            let link = try await accept(timeout: max(.zero, deadline - .now()))
            if link.peer.ringEpoch == ringEpoch { return link }
            if link.peer.ringEpoch < ringEpoch {
                await link.close()
                continue
            }
            ahead.withLockedValue { $0.append(link) }
            throw TransportError.newerRing(peer: link.peerDescription, epoch: link.peer.ringEpoch, ours: ringEpoch)
        }
    }

    /// The next link of the ring of `ringEpoch` that `wanted` takes (the member expected there): links
    /// of that ring from anyone else are closed, and the wait goes on until `timeout`.
    public func accept(ringEpoch: UInt64, rank: UInt32, timeout: TimeAmount, where wanted: (PeerLink) -> Bool) async throws -> PeerLink {
        let deadline = NIODeadline.now() + timeout
        while true {
            let link = try await accept(ringEpoch: ringEpoch, rank: rank, timeout: max(.zero, deadline - .now()))
            if wanted(link) { return link }
            await link.close()
        }
    }

    /// The next peer that completed the handshake.
    public func accept(timeout: TimeAmount) async throws -> PeerLink {
        let seconds = Double(timeout.nanoseconds) / 1e9
        let port = self.port
        return try await accepted.next(timeout: timeout, on: channel.eventLoop) {
            TransportError.timeout(peer: "listener on port \(port)", waitingFor: "a peer to connect", seconds: seconds)
        }
    }

    /// Stops listening (established links stay open).
    public func close() async {
        try? await channel.close().get()
        accepted.fail(TransportError.closed(peer: "listener on port \(port)", reason: "listener closed"))
    }
}
