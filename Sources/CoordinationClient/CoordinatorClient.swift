import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Basics
import Coordination

/// Errors talking to the coordinator.
public struct CoordinatorClientError: Error, CustomStringConvertible {
    /// HTTP status, when the coordinator answered (its refusal reason is in `reason`).
    public var status: Int?
    public var reason: String
    public var description: String { reason }

    public init(status: Int? = nil, reason: String) {
        self.status = status
        self.reason = reason
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

    public init(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.group = group
    }

    public func join(_ request: JoinRequest) async throws -> JoinReply { try await send("POST", "/v1/join", request) }
    /// Heartbeat, report and leave carry the member's credential from its join reply.
    public func heartbeat(_ name: String, credential: String) async throws -> RingView {
        try await send("POST", "/v1/heartbeat", WorkerName(name: name), credential: credential)
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
        let collector = ResponseCollector(limit: maxResponseBytes)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
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
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
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
    private var status = 0
    private var body = ByteBuffer()
    // Only touched on the channel's event loop.
    private var promise: EventLoopPromise<(Int, ByteBuffer)>?
    private var outcome: Result<(Int, ByteBuffer), any Error>?

    init(limit: Int) { self.limit = limit }

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

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(CoordinatorClientError(reason: "the coordinator closed the connection before answering")))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(CoordinatorClientError(reason: "talking to the coordinator: \(error)")))
        context.close(promise: nil)
    }
}
