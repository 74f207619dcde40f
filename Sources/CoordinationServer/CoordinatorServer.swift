import Dispatch
import Foundation
import Hummingbird
import Logging
import NIOCore
import Basics
import Coordination

/// The coordinator's state behind an actor, with the clock it runs on.
public actor Coordinator {
    public private(set) var state: CoordinatorState
    private let start = DispatchTime.now().uptimeNanoseconds
    private let onReport: @Sendable (WorkerReport, Int) -> Void
    private let logger: Logger

    /// `onReport` sees every accepted round report with its worker's rank (the run folder's log).
    public init(state: CoordinatorState, logger: Logger, onReport: @escaping @Sendable (WorkerReport, Int) -> Void = { _, _ in }) {
        self.state = state
        self.logger = logger
        self.onReport = onReport
    }

    /// Seconds since the coordinator started.
    public var now: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    func join(_ r: JoinRequest) throws(CoordinatorRefusal) -> JoinReply {
        do {
            // 128 random bits: what proves the member's later requests are its own.
            var generator = SystemRandomNumberGenerator()
            let credential = (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "-")
            let reply = try state.join(r, credential: credential, now: now)
            logger.info("worker joined", metadata: ["name": "\(r.name)", "admission": "\(reply.admission)", "data": "\(r.dataHost):\(r.dataPort)"])
            return reply
        } catch {
            logger.warning("join refused", metadata: ["name": "\(loggable(r.name))", "reason": "\(error.reason)"])
            throw error
        }
    }

    func heartbeat(_ name: String, credential: String?) throws(CoordinatorRefusal) -> RingView {
        try state.authenticate(name, credential: credential)
        return try state.heartbeat(name, now: now)
    }

    func leave(_ name: String, credential: String?) throws(CoordinatorRefusal) {
        try state.authenticate(name, credential: credential)
        try state.leave(name, now: now)
        logger.info("worker left", metadata: ["name": "\(name)"])
    }

    func report(_ r: WorkerReport, credential: String?) throws(CoordinatorRefusal) {
        try state.authenticate(r.name, credential: credential)
        if try state.report(r, now: now), let position = state.positionByName(of: r.name) { onReport(r, position) }
    }

    /// Marks silent workers as lost.
    public func expire() {
        for name in state.expire(now: now) { logger.warning("worker lost: no heartbeat", metadata: ["name": "\(name)"]) }
    }

    public func status() -> StatusReport { state.status(now: now) }
}

/// The coordinator's HTTP/JSON API on Hummingbird.
///
/// `POST /v1/join`, `/v1/heartbeat`, `/v1/leave`, `/v1/report` take JSON bodies; `GET /v1/run`, `/v1/ring`,
/// `/status` (JSON) and `/metrics` (Prometheus text) read state. Every refusal or malformed
/// request gets a 4xx with a JSON `{"error": ...}` naming what was wrong.
public enum CoordinatorServer {
    /// Largest request body accepted.
    public static let maxBodyBytes = 1 << 20

    /// The API's routes over `coordinator`: what `run` serves, and what tests drive without a
    /// socket (through `buildResponder()`).
    public static func router(for coordinator: Coordinator) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v1/join") { request, context in
            try await answer { try await coordinator.join(decode(JoinRequest.self, request, context)) }
        }
        router.post("/v1/heartbeat") { request, context in
            try await answer { try await coordinator.heartbeat(decode(WorkerName.self, request, context).name, credential: credential(request)) }
        }
        router.post("/v1/leave") { request, context in
            try await answer { () async throws -> ErrorBody? in
                try await coordinator.leave(decode(WorkerName.self, request, context).name, credential: credential(request))
                return nil
            }
        }
        router.post("/v1/report") { request, context in
            try await answer { () async throws -> ErrorBody? in
                try await coordinator.report(decode(WorkerReport.self, request, context), credential: credential(request))
                return nil
            }
        }
        router.get("/v1/run") { _, _ in try await answer { await coordinator.state.run } }
        router.get("/v1/ring") { _, _ in try await answer { await coordinator.state.ring } }
        router.get("/status") { _, _ in try await answer { await coordinator.status() } }
        router.get("/metrics") { _, _ in
            let text = PrometheusText.render(await coordinator.status())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        return router
    }

    /// Serves `coordinator` on `host:port` until the task is cancelled; `onListening` gets the
    /// bound port (useful with port 0). Expires silent workers once a second.
    public static func run(_ coordinator: Coordinator, host: String, port: Int, logger: Logger,
                           onListening: @escaping @Sendable (Int) async -> Void) async throws {
        let router = router(for: coordinator)
        // Hummingbird logs a cancelled shutdown as an error; our own events go to `logger`.
        var serverLogger = logger
        serverLogger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "tributary-coordinator"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: serverLogger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                    await coordinator.expire()
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// The member credential a request carries (`Authorization: Bearer …`), if any.
    static func credential(_ request: Request) -> String? {
        guard let value = request.headers[.authorization], value.hasPrefix("Bearer ") else { return nil }
        return String(value.dropFirst(7))
    }

    /// A request's JSON body, or a 400/413 that says what was wrong with it.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: some RequestContext) async throws(CoordinatorRefusal) -> T {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maxBodyBytes) } catch {
            throw CoordinatorRefusal(status: 413, reason: "request body over \(maxBodyBytes) bytes")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView)) } catch {
            throw CoordinatorRefusal(status: 400, reason: "malformed \(T.self) JSON: \(describeDecodingError(error))")
        }
    }

    /// Runs `body` and turns its value into a JSON 200 (204 for nil) and a refusal into its status.
    static func answer<T: Encodable>(_ body: () async throws -> T?) async throws -> Response {
        do {
            guard let value = try await body() else { return Response(status: .noContent) }
            return json(value, status: .ok)
        } catch let refusal as CoordinatorRefusal {
            return json(ErrorBody(error: refusal.reason), status: HTTPResponse.Status(code: refusal.status))
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"response could not be encoded\"}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
