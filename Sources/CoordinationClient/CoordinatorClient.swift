import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Basics
import Coordination
import RunTrust

/// Errors talking to the coordinator.
public struct CoordinatorClientError: Error, CustomStringConvertible {
    /// HTTP status, when the coordinator answered (its refusal reason is in `reason`).
    public var status: Int?
    public var reason: String
    /// Whether trying again cannot help (TLS on one side only, or an authority the client does
    /// not trust), unlike a coordinator that is not up yet.
    public var isFinal = false
    /// The coordinator took the connection and closed it without a word: once, it may have been
    /// stopping; again and again, it speaks TLS to this plain client.
    public var closedUnanswered = false
    public var description: String { reason }

    public init(status: Int? = nil, reason: String, isFinal: Bool = false) {
        self.status = status
        self.reason = reason
        self.isFinal = isFinal
    }
}

/// A worker's side of the coordinator's HTTP/JSON API: one short HTTP/1.1 connection per request
/// (a request every few seconds does not need pooling), on NIO's HTTP codec.
public struct CoordinatorClient: Sendable {
    public let host: String
    public let port: Int
    /// Largest response body accepted.
    public var maxResponseBytes = 16 << 20
    public var timeout: TimeAmount = .seconds(10)
    let group: any EventLoopGroup
    /// TLS to the coordinator (nil: plain HTTP, a coordinator started with `--insecure`), and the
    /// name its certificate must carry (nil: not checked, only to fetch the authority by hash).
    let tls: (context: NIOSSLContext, serverName: String?)?

    /// Whether requests go over TLS.
    public var usesTLS: Bool { tls != nil }

    /// A client of the coordinator at `host:port`; `trust` nil speaks plain HTTP.
    public init(host: String, port: Int, trust: CoordinatorTrust?, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.group = group
        tls = trust.map { ($0.context, $0.serverName) }
    }

    private init(host: String, port: Int, unverified: NIOSSLContext, group: any EventLoopGroup) {
        self.host = host
        self.port = port
        self.group = group
        tls = (unverified, nil)
    }

    /// Trust in the coordinator at `host:port` from the fingerprint of its run's authority (`sha256:…`,
    /// printed by the coordinator), got another way: the authority's certificate is fetched without
    /// checking, then kept only if its fingerprint is the one given (as `kubeadm join` does).
    public static func trust(host: String, port: Int, fingerprint: String,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> CoordinatorTrust {
        let fetcher = CoordinatorClient(host: host, port: port, unverified: try CoordinatorTrust.unverified(), group: group)
        let pem = try await fetcher.text("/v1/ca")
        let seen = try CoordinatorTrust.fingerprint(ofPEM: pem)
        guard seen.lowercased() == fingerprint.lowercased() else {
            throw CoordinatorClientError(reason: "the coordinator at \(host):\(port) presents a run authority with fingerprint \(seen), "
                + "not \(fingerprint): check --ca-hash against what the coordinator printed (or someone is in between)")
        }
        return try CoordinatorTrust(authorityPEM: pem)
    }

    public func join(_ request: JoinRequest) async throws -> JoinReply { try await send("POST", "/v1/join", request) }
    /// Heartbeat, report and leave carry the member's credential from its join reply.
    public func heartbeat(_ name: String, credential: String) async throws -> RingView {
        try await send("POST", "/v1/heartbeat", WorkerName(name: name), credential: credential)
    }
    /// Says this worker's ring broke and it waits for a new one (see `CoordinatorState.ringBroken`); a heartbeat too.
    public func ringBroken(_ report: RingBroken, credential: String) async throws -> RingView {
        try await send("POST", "/v1/ring-broken", report, credential: credential)
    }
    /// The run's description (config, layout hash, run id), which a worker needs before it joins:
    /// only for holders of the run's token, since the run id and layout open the data plane's door.
    public func run(token: String) async throws -> RunDescription {
        try await send("GET", "/v1/run", Optional<WorkerName>.none, credential: token)
    }
    public func ring() async throws -> RingView { try await send("GET", "/v1/ring", Optional<WorkerName>.none) }
    public func status() async throws -> StatusReport { try await send("GET", "/status", Optional<WorkerName>.none) }
    public func leave(_ name: String, credential: String) async throws {
        _ = try await exchange("POST", "/v1/leave", body: encode(WorkerName(name: name)), credential: credential)
    }
    public func report(_ report: WorkerReport, credential: String) async throws {
        _ = try await exchange("POST", "/v1/report", body: encode(report), credential: credential)
    }

    /// The raw text of a GET, e.g. `/metrics`.
    public func text(_ path: String) async throws -> String {
        String(decoding: try await exchange("GET", path, body: nil).readableBytesView, as: UTF8.self)
    }

    private func encode(_ value: some Encodable) throws -> ByteBuffer { ByteBuffer(bytes: try JSONEncoder().encode(value)) }

    private func send<T: Encodable, R: Decodable>(_ method: String, _ path: String, _ body: T?, credential: String? = nil) async throws -> R {
        let reply = try await exchange(method, path, body: try body.map(encode), credential: credential)
        do { return try JSONDecoder().decode(R.self, from: Data(reply.readableBytesView)) } catch {
            throw CoordinatorClientError(reason: "coordinator \(host):\(port)\(path) sent a malformed \(R.self): \(describeDecodingError(error))")
        }
    }

    /// One request/response; a 4xx or 5xx becomes an error carrying the coordinator's reason.
    public func exchange(_ method: String, _ path: String, body: ByteBuffer?, credential: String? = nil) async throws -> ByteBuffer {
        let collector = ResponseCollector(limit: maxResponseBytes, tls: tls != nil)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { [tls] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.context,
                                                                                                   serverHostname: tls.serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw CoordinatorClientError(reason: "cannot reach the coordinator at \(host):\(port): \(error)")
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Connection", value: "close")
        if let credential { head.headers.add(name: "Authorization", value: "Bearer \(credential)") }
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        // The request waits for the TLS handshake: a handshake cut short fails this write, and
        // is classified as the handler classifies it (retryable unless the sides disagree).
        do { try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)) } catch { throw collector.failure(for: error) }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            collector.fail(CoordinatorClientError(reason: "the coordinator at \(host):\(port) did not answer \(method) \(path) within \(timeout.nanoseconds / 1_000_000_000) s"))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        let (status, reply) = try await collector.response(on: channel.eventLoop)
        channel.close(promise: nil)
        guard (200..<300).contains(status) else {
            let reason = (try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.readableBytesView)))?.error
                ?? String(decoding: reply.readableBytesView.prefix(200), as: UTF8.self)
            throw CoordinatorClientError(status: status, reason: "coordinator refused \(method) \(path) (\(status)): \(reason)")
        }
        return reply
    }
}

/// Gathers one HTTP response on the channel's event loop.
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let limit: Int
    /// Whether we speak TLS: a mismatch with the coordinator shows as a closed connection or a
    /// TLS error, and the message says which flag fixes it.
    private let tls: Bool
    private var status = 0
    private var body = ByteBuffer()
    // Only touched on the channel's event loop.
    private var promise: EventLoopPromise<(Int, ByteBuffer)>?
    private var outcome: Result<(Int, ByteBuffer), any Error>?

    init(limit: Int, tls: Bool) {
        self.limit = limit
        self.tls = tls
    }

    private var mismatchHint: String {
        tls ? " (if the coordinator runs with --insecure, give --insecure here too)"
            : " (if the coordinator serves TLS, its default, give --ca FILE or --ca-hash HASH instead of --insecure)"
    }

    func response(on loop: any EventLoop) async throws -> (Int, ByteBuffer) {
        try await loop.submit { () -> EventLoopFuture<(Int, ByteBuffer)> in
            if let outcome = self.outcome { return loop.makeCompletedFuture(outcome) }
            let p = loop.makePromise(of: (Int, ByteBuffer).self)
            self.promise = p
            return p.futureResult
        }.get().get()
    }

    func fail(_ error: any Error) { finish(.failure(error)) }

    private func finish(_ result: Result<(Int, ByteBuffer), any Error>) {
        guard outcome == nil else { return }
        outcome = result
        promise?.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= limit else {
                finish(.failure(CoordinatorClientError(reason: "the coordinator's answer exceeds \(limit) bytes")))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end: finish(.success((status, body)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) { finish(.failure(closedUnanswered)) }

    /// The coordinator took the connection and closed it without an answer.
    private var closedUnanswered: CoordinatorClientError {
        var error = CoordinatorClientError(reason: "the coordinator closed the connection before answering" + mismatchHint)
        error.closedUnanswered = true
        return error
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(failure(for: error)))
        context.close(promise: nil)
    }

    /// A channel error as the client's error: a TLS failure other than a cut-short handshake,
    /// or TLS bytes parsed as HTTP, means the two sides disagree on security, which no retry
    /// mends; anything else (a coordinator stopping mid-handshake, a reset) may pass. A TLS stream
    /// cut after its handshake without a close_notify is a coordinator that stopped before it
    /// answered (killed, say): a closed connection like any other, not a mismatch. Taken for one, it
    /// lost the worker's report whose request a killed coordinator was answering (session 21).
    func failure(for error: any Error) -> CoordinatorClientError {
        if let tls = error as? NIOSSLError, tls == .uncleanShutdown { return closedUnanswered }
        let mismatch = (error is NIOSSLError && !"\(error)".contains("EOF during handshake")) || error is HTTPParserError
        return CoordinatorClientError(reason: "talking to the coordinator: \(error)" + (mismatch ? mismatchHint : ""), isFinal: mismatch)
    }
}
