import Logging
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

    private init(port: Int, channel: Channel, accepted: AsyncQueue<PeerLink>) {
        self.port = port
        self.channel = channel
        self.accepted = accepted
    }

    /// Binds `host:port` (port 0 picks a free one).
    public static func bind(host: String, port: Int, options: PeerLink.Options, group: EventLoopGroup,
                            logger: Logger? = nil) async throws -> PeerListener {
        let accepted = AsyncQueue<PeerLink>()
        let channel: Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelInitializer { child in
                    let inbox = PeerLink.makeInbox(options)
                    return child.eventLoop.makeCompletedFuture {
                        try PeerLink.configure(child, inbox: inbox, options: options)
                    }.map {
                        let address = child.remoteAddress.map { "\($0)" } ?? "?"
                        Task {
                            do {
                                accepted.push(try await PeerLink.establish(channel: child, inbox: inbox, role: .listener,
                                                                           options: options, address: address))
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
        return PeerListener(port: channel.localAddress?.port ?? port, channel: channel, accepted: accepted)
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
